"""`wenu-stream serve api`: the business-logic API (catalog change sets, reads, alarm lifecycle) over HTTP.

Serves ``/api/v1/...`` (bearer token or API key), the backoffice at ``/ui/`` (signed in with a session),
``/healthz``, ``/readyz``,
``/metrics`` and the OpenAPI document at ``/schema/openapi.json`` with
uvicorn on ``--host``/``--port``. Without an OIDC issuer configured, callers
sign in with development tokens from ``wenu-stream api token`` (signed with
the local secret file); there is no unauthenticated mode. Logs are JSON on
stderr; the first line says where it listens. Stops on SIGTERM/SIGINT.
Exit code 2 on bad configuration, before anything is served.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
from typing import Any

from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.config import env_name


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="serve_command", required=True)
    api = sub.add_parser(
        "api",
        help="the business-logic API (catalog change sets, reads, alarm lifecycle)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, leaf, text in (
        ("--host", "api.host", "address to bind"),
        ("--port", "api.port", "port (0: a free one)"),
        ("--oidc-issuer", "api.oidc_issuer", "OIDC issuer URL (Cognito user pool)"),
        ("--oidc-audience", "api.oidc_audience", "OIDC app client id"),
    ):
        api.add_argument(
            flag,
            dest=f"cfg:{leaf}",
            default=None,
            metavar=leaf.split(".")[-1].upper(),
            help=f"{text} [env: {env_name(leaf)}]",
        )
    add_config_flags(api, "--catalog", "--stream", "--bucket", "--log-level")
    api.set_defaults(handler=serve_api)


def serve_api(args: argparse.Namespace) -> int:
    import uvicorn

    from wenu_stream.bootstrap import api_services, backoffice
    from wenu_stream.log import configure_logging, get_logger
    from wenu_stream.web.app import create_app
    from wenu_stream.web.pages import backoffice_routes

    config = config_from(args)
    configure_logging(config.log_level)
    services = api_services(config)
    app = create_app(services, extra_routes=backoffice_routes(backoffice(config)))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.api.host,
            port=config.api.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            server_header=False,
        )
    )
    log = get_logger("wenu.api")

    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets)
        for s in server.servers:
            for sock in s.sockets:
                host, port = sock.getsockname()[:2]
                log.info(
                    "api_serving",
                    url=f"http://{host}:{port}",
                    catalog_version=services.catalog.run(lambda st: st.version()),
                )

    server.startup = startup  # type: ignore[method-assign]
    # uvicorn re-raises a captured SIGTERM after its graceful shutdown (the process would die by the signal):
    # a stop on SIGTERM/SIGINT is the normal end of this service, so it finishes and exits 0.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: setattr(server, "should_exit", True))
    try:
        server.run()
    finally:
        services.catalog.close()
    log.info("api_stopped")
    return 0
