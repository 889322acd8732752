"""Signing in to the backoffice, and who is signed in: an encrypted session cookie holding a verified token.

The pages never take a bearer header: a browser signs in once and its
session cookie (AES-GCM encrypted by Litestar, ``HttpOnly``, ``SameSite=Lax``,
``Secure`` behind https) carries the token. Each request verifies it again
with the API's :class:`~wenu_stream.web.auth.Authenticator`, so an expired or
revoked token ends the session and roles and company come from the token as
for the API (tenancy is the same module). Unsafe requests must carry the CSRF
token (a form field or the ``X-CSRFToken`` header htmx sends).

Sign-in: with an OIDC issuer configured, the authorization code flow with
PKCE (``web.pages.oidc``); in the embedded default, a development token
(``wenu-stream api token``) pasted into the sign-in form. There is no open door.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any
from urllib.parse import quote, urlparse

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from wenu_stream.config import Config
from wenu_stream.log import get_logger
from wenu_stream.web.auth import Principal, Unauthenticated
from wenu_stream.web.context import services_of
from wenu_stream.web.pages.oidc import OidcClient, SignInFailed
from wenu_stream.web.pages.render import redirect, render

LOGIN_PATHS = ["^/ui/login", "^/ui/auth/", "^/ui/static/"]


def session_key(config: Config, dev_secret: bytes | None) -> bytes:
    """The 32-byte key of the session cookie: from ``api.session_secret``, else the dev secret, else random."""
    if config.api.session_secret:
        material = config.api.session_secret.encode()
    elif dev_secret is not None:
        material = dev_secret
    else:
        get_logger("wenu.api").warning(
            "session_key_random",
            hint="set api.session_secret (WENU_API_SESSION_SECRET) when several tasks serve the backoffice",
        )
        material = secrets.token_bytes(32)
    return hashlib.sha256(b"wenu-backoffice-session\x00" + material).digest()


def backoffice_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Any:
    """The backoffice's settings (``web.pages.Backoffice``), carried by its router's ``opt``."""
    return connection.route_handler.opt["backoffice"]


class SessionAuth(AbstractAuthenticationMiddleware):
    """The caller of a page: the token in the session, verified again on every request."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        session = connection.scope.get("session")
        token = session.get("token") if isinstance(session, dict) else None
        if not token:
            raise NotAuthorizedException("sign in")
        authenticator = services_of(connection).authenticator
        try:
            principal = await anyio.to_thread.run_sync(authenticator.authenticate, f"Bearer {token}")
        except Unauthenticated as exc:
            connection.scope["session"] = {}
            raise NotAuthorizedException(str(exc)) from None
        return AuthenticationResult(user=principal, auth=token)


def safe_next(target: str | None) -> str:
    """Only a path of the backoffice itself (no open redirect to another site)."""
    if not target or not target.startswith("/ui") or urlparse(target).netloc or target.startswith("//"):
        return "/ui/"
    return target


def to_login(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    """Not signed in (or the token expired): to the sign-in page, back here afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(request, f"/ui/login?next={quote(safe_next(here))}")


@get("/ui/login", include_in_schema=False)
async def login_page(request: Request[Any, Any, Any]) -> Response[str]:
    """OIDC configured: off to the issuer. Otherwise the development-token form."""
    target = safe_next(request.query_params.get("next"))
    backoffice = backoffice_of(request)
    if backoffice.oidc is None:
        return render(request, "login.html", next=target, error=None)
    oidc: OidcClient = backoffice.oidc
    callback = backoffice.public_url(request) + "/ui/auth/callback"
    try:
        url, pending = await anyio.to_thread.run_sync(oidc.start, callback)
    except SignInFailed as exc:
        return render(request, "login.html", next=target, error=str(exc), status_code=503)
    request.set_session({"oidc": {**pending, "next": target}})
    return Response("", status_code=303, headers={"Location": url})


@post("/ui/login", include_in_schema=False)
async def login_with_token(request: Request[Any, Any, Any]) -> Response[str]:
    """The embedded default: sign in with a development token (refused when an OIDC issuer is configured)."""
    form = await request.form()
    target = safe_next(form.get("next"))
    if backoffice_of(request).oidc is not None:
        return render(request, "login.html", next=target, status_code=403,
                      error="this service signs in through its OIDC issuer")  # fmt: skip
    token = str(form.get("token", "")).strip()
    try:
        principal: Principal = await anyio.to_thread.run_sync(
            services_of(request).authenticator.authenticate, f"Bearer {token}"
        )
    except Unauthenticated as exc:
        return render(request, "login.html", next=target, error=str(exc), status_code=401)
    request.set_session({"token": token})
    get_logger("wenu.api").info("backoffice_sign_in", subject=principal.subject, role=principal.role)
    return redirect(request, target)


@get("/ui/auth/callback", include_in_schema=False)
async def oidc_callback(request: Request[Any, Any, Any]) -> Response[str]:
    backoffice = backoffice_of(request)
    pending = request.session.get("oidc") if request.scope.get("session") else None
    target = safe_next((pending or {}).get("next"))
    if backoffice.oidc is None:
        return redirect(request, "/ui/login")
    params = dict(request.query_params)
    authenticator = services_of(request).authenticator

    def signed_in() -> tuple[str, Principal]:
        token = backoffice.oidc.finish(pending, params)
        claims = authenticator.tokens.verify(token)
        if not pending or not secrets.compare_digest(str(claims.get("nonce", "")), str(pending["nonce"])):
            raise SignInFailed("the ID token does not carry this sign-in's nonce: start again")
        return token, authenticator.authenticate(f"Bearer {token}")

    try:
        token, principal = await anyio.to_thread.run_sync(signed_in)
    except (SignInFailed, Unauthenticated) as exc:
        request.clear_session()
        return render(request, "login.html", next=target, error=str(exc), status_code=401)
    except Exception as exc:  # noqa: BLE001 - a token that fails verification (PyJWT errors) is a refusal
        request.clear_session()
        return render(request, "login.html", next=target, error=f"invalid ID token: {exc}", status_code=401)
    request.set_session({"token": token})
    get_logger("wenu.api").info(
        "backoffice_sign_in", subject=principal.subject, role=principal.role, via="oidc"
    )
    return Response("", status_code=303, headers={"Location": target})


@post("/ui/logout", include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Response[str]:
    request.clear_session()
    return redirect(request, "/ui/login")


ROUTES = [login_page, login_with_token, oidc_callback, logout]
