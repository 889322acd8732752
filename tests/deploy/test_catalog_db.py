"""deploy/ecs/catalog_db.py on a real PostgreSQL: the deploy-time migration and the services' DML-only role.

The owner here is an ordinary role with CREATEROLE that owns the database, like the RDS master user
(not a superuser): the migration creates the services' role, applies the catalog's migrations and
grants DML; the services' role then opens the store (it only reads the schema version), imports a
catalog, and cannot create a table.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.support.catalog import spec_document
from wenu_stream.catalog.document import validate
from wenu_stream.catalog.store import MIGRATIONS, CatalogStore

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "ecs" / "catalog_db.py"
_n = itertools.count()


@pytest.fixture
def database(postgres_dsn: str) -> dict[str, Any]:
    """A fresh database owned by a fresh non-superuser owner role; the two RDS-style secrets."""
    n = f"{next(_n)}_{os.getpid()}"
    owner, db, app = f"owner_{n}", f"catalog_{n}", f"app_{n}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD 'owner-pw'")
        conn.execute(f"CREATE DATABASE {db} OWNER {owner}")
    with psycopg.connect(postgres_dsn.rsplit("/", 1)[0] + f"/{db}", autocommit=True) as conn:
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # PostgreSQL 15+ and RDS default
        conn.execute(f"ALTER SCHEMA public OWNER TO {owner}")
    where = urlsplit(postgres_dsn)
    base = {"engine": "postgres", "host": where.hostname, "port": where.port, "dbname": db}
    return {
        "owner": {**base, "username": owner, "password": "owner-pw"},
        "app": {**base, "username": app, "password": "app-pw"},
    }


def migrate(secrets: dict[str, Any], app: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CATALOG_OWNER_SECRET_JSON": json.dumps(secrets["owner"]),
        "CATALOG_DB_SECRET_JSON": json.dumps(app or secrets["app"]),
        "CATALOG_DB_SSLMODE": "disable",  # the test server has no TLS; RDS forces it
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def app_url(secret: dict[str, Any]) -> str:
    return f"postgresql://{secret['username']}:{secret['password']}@{secret['host']}:{secret['port']}/{secret['dbname']}"


def test_migration_creates_the_services_role_which_uses_the_catalog_but_cannot_change_the_schema(
    database: dict[str, Any],
) -> None:
    done = migrate(database)
    assert done.returncode == 0, done.stderr
    log = json.loads(done.stderr.strip().splitlines()[-1])
    assert (log["event"], log["role_created"], log["schema_version"]) == (
        "catalog migrated",
        True,
        len(MIGRATIONS),
    )

    document = validate(spec_document()).document
    assert document is not None
    with CatalogStore(app_url(database["app"])) as store:  # a DML-only role opens a current store
        store.import_document(document)
        assert store.version() == 1
    with psycopg.connect(app_url(database["app"]), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE sneaky (x int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DROP TABLE companies")


def test_migration_is_idempotent_and_grants_the_base_role_when_the_rotation_clone_is_current(
    database: dict[str, Any],
) -> None:
    """Multi-user rotation alternates <user> and <user>_clone: a later migration grants <user> either way."""
    assert migrate(database).returncode == 0
    clone = {**database["app"], "username": database["app"]["username"] + "_clone"}
    again = migrate(database, clone)
    assert again.returncode == 0, again.stderr
    log = json.loads(again.stderr.strip().splitlines()[-1])
    assert (log["role"], log["role_created"]) == (database["app"]["username"], False)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "CATALOG_OWNER_SECRET_JSON is not set"),
        ({"CATALOG_OWNER_SECRET_JSON": "[]"}, "CATALOG_OWNER_SECRET_JSON lacks host"),
    ],
)
def test_a_missing_or_malformed_secret_exits_2_naming_it(env: dict[str, str], message: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "migrate"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert message in json.loads(done.stderr)["error"]


def test_the_database_refusing_exits_1(database: dict[str, Any]) -> None:
    owner = {**database["owner"], "dbname": "no_such_database"}
    done = migrate({**database, "owner": owner})
    assert done.returncode == 1
    assert "no_such_database" in json.loads(done.stderr)["error"]
