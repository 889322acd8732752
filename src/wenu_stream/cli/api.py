"""`wenu-stream api token|key`: credentials for the API.

token       a development token (the embedded default's sign-in), signed with the
            local secret file (api.dev_secret_file); refused when an OIDC issuer is
            configured: staff then sign in with the issuer (Cognito).
key create  a machine API key, printed once; only its hash is kept (catalog store).
key revoke  revoke a key by id.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.errors import ConfigError

ROLES = ("viewer", "operator", "admin")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "api",
        help="API credentials: development tokens and API keys",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="api_command", required=True)
    token = sub.add_parser("token", help="print a development token (no OIDC issuer configured)")
    token.add_argument("--role", choices=ROLES, required=True)
    token.add_argument("--company", default=None, help="a customer token: sees only this company")
    token.add_argument(
        "--subject", default="dev", help="who the token names (kept as author and in the audit log)"
    )
    token.add_argument("--ttl-hours", type=float, default=12.0)
    token.set_defaults(handler=mint_token)
    key = sub.add_parser("key", help="machine API keys")
    keys = key.add_subparsers(dest="key_command", required=True)
    create = keys.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--company", default="", help="a customer key: sees only this company")
    create.set_defaults(handler=create_key)
    revoke = keys.add_parser("revoke", help="revoke a key")
    revoke.add_argument("id")
    revoke.set_defaults(handler=revoke_key)
    for parser in (create, revoke):
        add_config_flags(parser, "--catalog")


def mint_token(args: argparse.Namespace) -> int:
    from wenu_stream.web.auth import DevTokens

    config = config_from(args)
    if config.api.oidc_issuer:
        raise ConfigError(
            "WENU_API_OIDC_ISSUER",
            "an OIDC issuer is configured: development tokens are refused",
            "sign in with the issuer, or unset it for local development",
        )
    if args.ttl_hours <= 0:
        raise ConfigError("--ttl-hours", "not positive", "give a number of hours, e.g. 12")
    api = config.api
    token = DevTokens.from_file(api.dev_secret_file).mint(
        subject=args.subject,
        role=args.role,
        company=args.company,
        now_s=int(time.time()),
        ttl_s=int(args.ttl_hours * 3600),
        roles_claim=api.roles_claim,
        company_claim=api.company_claim,
    )
    print(token)
    return 0


def create_key(args: argparse.Namespace) -> int:
    from wenu_stream.catalog.store import CatalogStore
    from wenu_stream.catalog.workspace import create_api_key

    with CatalogStore(config_from(args).catalog.url) as store:
        text, info = create_api_key(store, name=args.name, role=args.role, company=args.company)
    print(text)
    import sys

    print(
        f"key {info.id} ({info.role}{', company ' + info.company if info.company else ''}): "
        "shown once, only its hash is kept",
        file=sys.stderr,
    )
    return 0


def revoke_key(args: argparse.Namespace) -> int:
    from wenu_stream.catalog.store import CatalogStore
    from wenu_stream.catalog.workspace import revoke_api_key

    with CatalogStore(config_from(args).catalog.url) as store:
        revoke_api_key(store, args.id)
    return 0
