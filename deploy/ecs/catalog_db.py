"""The catalog database of a deployed stage: its URL from an RDS secret, and the deploy-time migration.

    python3 catalog_db.py url       print the catalog URL composed from $CATALOG_DB_SECRET_JSON
                                    (entrypoint.sh exports it as WENU_CATALOG_URL)
    python3 catalog_db.py migrate   as the database owner ($CATALOG_OWNER_SECRET_JSON): create the
                                    services' role (user and password of $CATALOG_DB_SECRET_JSON) if it
                                    does not exist, apply the catalog's pending migrations, and grant
                                    the role DML (no DDL) on every table, present and future

Both secrets are RDS secrets (JSON: engine, host, port, username, password, dbname). The owner's is the
instance's master secret; the services' is rotated by Secrets Manager's multi-user rotation, which
alternates between ``<user>`` and ``<user>_clone`` (a member of ``<user>``): grants go to ``<user>``, so
both see every table. The role's password is set only when the role is created; rotation owns it after.

Connections use ``sslmode`` from $CATALOG_DB_SSLMODE (default ``require``: the instance forces TLS).
The one-off ECS task of each deploy runs ``migrate`` (deploy/cdk/wenu_cdk/catalog.py); it is idempotent.

Exit codes: 0 done, 2 a missing or malformed secret (named, with the fix), 1 the database refused.
Logs are JSON lines on stderr; no password is logged (``url`` prints one on stdout, for the entrypoint).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any
from urllib.parse import quote

APP_SECRET = "CATALOG_DB_SECRET_JSON"
OWNER_SECRET = "CATALOG_OWNER_SECRET_JSON"
FIELDS = ("host", "port", "username", "password", "dbname")
CLONE_SUFFIX = "_clone"  # Secrets Manager's multi-user rotation: <user> and <user>_clone take turns


class SecretError(ValueError):
    """A secret that is missing or not an RDS secret; the message names it and the fix."""


def read_secret(environ: dict[str, str] | os._Environ[str], name: str) -> dict[str, Any]:
    """The RDS secret JSON in the environment variable ``name`` (an ECS secret), checked."""
    raw = environ.get(name, "")
    if not raw:
        raise SecretError(f"{name} is not set; fix: give the task the RDS secret as the ECS secret {name}")
    try:
        secret = json.loads(raw)
    except ValueError:
        raise SecretError(
            f"{name} is not JSON; fix: reference the whole RDS secret, not one of its keys"
        ) from None
    missing = [f for f in FIELDS if not isinstance(secret, dict) or secret.get(f) in (None, "")]
    if missing:
        raise SecretError(
            f"{name} lacks {', '.join(missing)}; fix: use an RDS secret attached to the instance"
        )
    return secret  # type: ignore[no-any-return]


def url(secret: dict[str, Any], sslmode: str = "require") -> str:
    """``postgresql://user:password@host:port/dbname?sslmode=...`` with user and password percent-encoded."""
    user, password = quote(str(secret["username"]), safe=""), quote(str(secret["password"]), safe="")
    return (
        f"postgresql://{user}:{password}@{secret['host']}:{int(secret['port'])}/{quote(str(secret['dbname']))}"
        f"?sslmode={sslmode}"
    )


def migrate(owner: dict[str, Any], app: dict[str, Any], *, sslmode: str = "require") -> dict[str, Any]:
    """Create the services' role when missing, apply the catalog's migrations, grant DML; what was done."""
    import psycopg
    from psycopg import sql

    from wenu_stream.catalog.store import CatalogStore

    role = str(app["username"]).removesuffix(CLONE_SUFFIX)
    if role == owner["username"]:
        raise SecretError(f"{APP_SECRET} names the owner {role!r}; fix: give the services their own user")
    owner_url = url(owner, sslmode)
    with psycopg.connect(owner_url, autocommit=True, connect_timeout=30) as conn:
        created = not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if created:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(str(app["password"]))
                )
            )
    with CatalogStore(owner_url) as store:  # opening a store applies its pending migrations
        version = store.migrate()
    grants = [
        "GRANT USAGE ON SCHEMA public TO {role}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}",
    ]
    with psycopg.connect(owner_url, autocommit=True, connect_timeout=30) as conn, conn.transaction():
        for statement in grants:
            conn.execute(sql.SQL(statement).format(role=sql.Identifier(role)))
    return {"role": role, "role_created": created, "schema_version": version}


def _log(event: str, level: str = "info", **fields: Any) -> None:
    print(json.dumps({"event": event, "level": level, "logger": "catalog_db", **fields}), file=sys.stderr)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    sslmode = os.environ.get("CATALOG_DB_SSLMODE", "require")
    try:
        if command == "url":
            print(url(read_secret(os.environ, APP_SECRET), sslmode))
            return 0
        if command == "migrate":
            done = migrate(
                read_secret(os.environ, OWNER_SECRET), read_secret(os.environ, APP_SECRET), sslmode=sslmode
            )
            _log("catalog migrated", **done)
            return 0
    except SecretError as exc:
        _log("bad secret", "error", error=str(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - the database refused: say what, exit 1 (the deploy fails)
        _log("catalog migration failed", "error", error=" ".join(str(exc).split()), kind=type(exc).__name__)
        return 1
    _log("bad arguments", "error", error=f"unknown command {command!r}; fix: pass url or migrate")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
