"""The backoffice: server-rendered pages (Jinja2 + htmx, uPlot charts) served by the API's own app under /ui.

The pages are a view over the API: they call the API's route handlers
(``call``) with the signed-in caller, so roles, tenancy and validation are the
API's, in one place. :func:`backoffice_routes` returns what ``create_app``
adds (``extra_routes``): one router with the session, CSRF and sign-in
middleware, HTML error pages, and the vendored static files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.config.csrf import CSRFConfig
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session import SessionMiddleware
from litestar.middleware.session.client_side import ClientSideSessionBackend, CookieBackendConfig
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp

from wenu_stream.web.catalog_access import CatalogDown
from wenu_stream.web.pages import (
    alarm_pages,
    catalog_pages,
    change_pages,
    ops_pages,
    rule_pages,
    series_pages,
)
from wenu_stream.web.pages.oidc import OidcClient
from wenu_stream.web.pages.render import is_htmx, redirect, render
from wenu_stream.web.pages.session import LOGIN_PATHS, SessionAuth, session_key, to_login
from wenu_stream.web.pages.session import ROUTES as SESSION_ROUTES

STATIC = Path(__file__).resolve().parent.parent / "static"


class Backoffice:
    """What the pages need beyond the API's services: the OIDC client (None: dev tokens) and operator actions."""

    def __init__(
        self,
        *,
        oidc: OidcClient | None,
        session_key: bytes,
        public_url: str = "",
        redrive_letters: Callable[[str, str | None], dict[str, Any]] | None = None,
        redrive_quarantine: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.oidc = oidc
        self.session_key = session_key
        self._public_url = public_url.rstrip("/")
        self.redrive_letters = redrive_letters
        self.redrive_quarantine = redrive_quarantine

    def __deepcopy__(self, memo: dict[int, Any]) -> Backoffice:
        return self  # shared, not copied, by the handlers that carry it in their ``opt``

    def public_url(self, request: Request[Any, Any, Any]) -> str:
        return self._public_url or str(request.base_url).rstrip("/")


def _session_middleware(app: ASGIApp, config: CookieBackendConfig) -> ASGIApp:
    """Litestar's cookie session, its cipher built per app (a router's middleware is deep-copied: a cipher is not)."""
    return SessionMiddleware(app, backend=ClientSideSessionBackend(config=config))


def _error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    if isinstance(exc, CatalogDown):
        status, detail = 503, f"the catalog database cannot be reached: {exc}"
    elif isinstance(exc, HTTPException):
        status, detail = exc.status_code, str(exc.detail)
    else:
        from wenu_stream.log import get_logger

        get_logger("wenu.api").error("page_failed", path=request.url.path, exc_info=exc)
        status, detail = 500, "internal error (logged)"
    if is_htmx(request):
        return render(request, "error.html", fragment="message", status=status, detail=detail,
                      status_code=200, headers={"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"})  # fmt: skip
    return render(request, "error.html", status=status, detail=detail, status_code=status)


@get("/", include_in_schema=False)
async def root(request: Request[Any, Any, Any]) -> Response[str]:
    return redirect(request, "/ui/")


def backoffice_routes(backoffice: Backoffice) -> list[Any]:
    """The backoffice's router (to pass as ``create_app(..., extra_routes=...)``)."""
    secure = backoffice._public_url.startswith("https://")
    key = backoffice.session_key
    session = CookieBackendConfig(secret=key, key="wenu_session", path="/ui", httponly=True, samesite="lax",
                                  secure=secure, max_age=12 * 3600)  # fmt: skip
    csrf = CSRFConfig(secret=key.hex(), cookie_name="wenu_csrf", cookie_path="/ui", cookie_httponly=True,
                      cookie_samesite="strict", cookie_secure=secure)  # fmt: skip
    pages = Router(
        path="/",
        route_handlers=[
            *SESSION_ROUTES,
            *catalog_pages.ROUTES,
            *change_pages.ROUTES,
            *rule_pages.ROUTES,
            *alarm_pages.ROUTES,
            *series_pages.ROUTES,
            *ops_pages.ROUTES,
        ],
        middleware=[
            DefineMiddleware(_session_middleware, config=session),
            DefineMiddleware(CSRFMiddleware, config=csrf),
            DefineMiddleware(SessionAuth, exclude=LOGIN_PATHS),
        ],
        exception_handlers={NotAuthorizedException: to_login, Exception: _error_page},
        opt={"backoffice": backoffice},
        include_in_schema=False,
    )
    static = create_static_files_router(path="/ui/static", directories=[STATIC], include_in_schema=False,
                                        cache_control=None)  # fmt: skip
    return [root, pages, static]


__all__ = ["Backoffice", "backoffice_routes", "session_key"]
