"""The ASGI application of the API (and, later, the backoffice pages): a factory over injected services.

``create_app(services)`` builds a Litestar app; the caller (the CLI's
``serve api``, a test, the bench) builds :class:`ApiServices` from the
configuration. Nothing here imports the composition root.

Layout:
- ``/healthz`` (liveness), ``/readyz`` (the catalog database answers),
  ``/metrics`` (Prometheus), ``/schema/openapi.json`` (OpenAPI 3.1): open;
- ``/api/v1/...``: authenticated (``web.auth``), tenancy in ``web.tenancy``.

Errors are JSON ``{"status_code", "detail", "extra"}``: 400 a bad parameter,
401 no or bad credentials, 403 a role or a staff-only endpoint, 404 unknown
(or another company's) resource, 409 a stale base version, 422 an invalid
change set (``extra.problems`` lists every problem), 503 a store that cannot
be reached. ``extra_routes`` adds handlers (the backoffice's server-rendered
pages) to the same app, behind the same authentication.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar

import anyio.to_thread
from botocore.exceptions import BotoCoreError, ClientError
from litestar import Litestar, MediaType, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult, DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import generate_latest

from wenu_stream import __version__
from wenu_stream.aws.common import error_code
from wenu_stream.log import get_logger
from wenu_stream.web import alarm_routes, catalog_routes, read_routes
from wenu_stream.web.auth import Unauthenticated
from wenu_stream.web.catalog_access import CatalogDown
from wenu_stream.web.context import ApiServices, principal_of, services_of, threaded

T = TypeVar("T")
# The backoffice's pages (/ui, and / which leads there) sign in with a session cookie (web.pages.session).
OPEN_PATHS = ["^/healthz$", "^/readyz$", "^/metrics$", "^/schema", "^/ui", "^/$"]


class _Auth(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        services = services_of(connection)
        header = connection.headers.get("authorization")
        try:
            principal = await anyio.to_thread.run_sync(services.authenticator.authenticate, header)
        except Unauthenticated as exc:
            raise NotAuthorizedException(str(exc)) from None
        return AuthenticationResult(user=principal, auth=header)


def _metrics_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await app(scope, receive, capture)
        finally:
            services: ApiServices = scope["app"].state.services
            route = scope.get("path_template") or "unmatched"
            method = scope["method"]  # an HTTP scope (websockets returned above)
            services.requests.labels(route, method, str(status[0])).inc()
            services.latency.labels(route, method).observe(time.perf_counter() - started)

    return middleware


def _unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    get_logger("wenu.api").warning("store_unavailable", path=request.url.path, error=str(exc))
    return Response(
        {"status_code": 503, "detail": f"a store cannot be reached: {exc}", "extra": {}},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(
        exc, HTTPException
    ):  # Litestar's own 4xx/5xx (validation, not found, ...): as it renders them
        return Response(
            {"status_code": exc.status_code, "detail": exc.detail, "extra": exc.extra or {}},
            status_code=exc.status_code,
            headers=exc.headers,
        )
    get_logger("wenu.api").error("request_failed", path=request.url.path, method=request.method, exc_info=exc)
    return Response({"status_code": 500, "detail": "internal error (logged)", "extra": {}}, status_code=500)


def _aws_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if error_code(exc) == "ResourceNotFoundException":
        return Response(
            {"status_code": 404, "detail": "no such table or stream (provisioned?)", "extra": {}},
            status_code=404,
        )
    return _unavailable(request, exc)


@get("/healthz", media_type=MediaType.TEXT, include_in_schema=False)
async def healthz() -> str:
    return "ok\n"


@get("/readyz", media_type=MediaType.TEXT, include_in_schema=False)
@threaded
def readyz(request: Request[Any, Any, Any]) -> Response[str]:
    try:
        services_of(request).catalog.run(lambda s: s.version())
    except CatalogDown as exc:
        return Response(f"catalog unavailable: {exc}\n", status_code=503, media_type=MediaType.TEXT)
    return Response("ready\n", media_type=MediaType.TEXT)


@get("/metrics", include_in_schema=False, sync_to_thread=False)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    return Response(generate_latest(services_of(request).registry), media_type="text/plain; version=0.0.4")


def _operation_id(handler: Any, method: str, components: Any) -> str:
    """The handler function's name (sync handlers run in a thread are wrapped: look through the wrapper)."""
    fn = handler.fn
    while hasattr(fn, "func"):  # AsyncCallable, functools.partial
        fn = fn.func
    return str(getattr(fn, "__name__", handler.handler_name))


def create_app(services: ApiServices, *, extra_routes: Sequence[Any] = ()) -> Litestar:
    """Build the API app over ``services``; ``extra_routes`` are added behind the same authentication."""

    openapi = OpenAPIConfig(
        title="wenu-stream API", version=__version__, path="/schema",
        description="Catalog change sets and versions; stats, alarms and operations reads; alarm acknowledgement "
                    "and shelving. Times are ISO 8601 with an offset; series carry their site's time zone.",
        components=Components(security_schemes={"bearer": SecurityScheme(
            type="http", scheme="bearer", description="OIDC access token, development token or API key (wsk_...)")}),
        security=[{"bearer": []}], operation_id_creator=_operation_id,
    )  # fmt: skip
    handlers = [
        healthz,
        readyz,
        metrics,
        *catalog_routes.ROUTES,
        *read_routes.ROUTES,
        *alarm_routes.ROUTES,
        *extra_routes,
    ]
    app = Litestar(
        route_handlers=handlers,
        middleware=[_metrics_middleware, DefineMiddleware(_Auth, exclude=OPEN_PATHS)],
        exception_handlers={CatalogDown: _unavailable, BotoCoreError: _aws_error, ClientError: _aws_error,
                            Exception: _internal},
        openapi_config=openapi,
        debug=False,
    )  # fmt: skip
    app.state.services = services
    return app


__all__ = ["ApiServices", "HTTPException", "create_app", "principal_of", "services_of"]
