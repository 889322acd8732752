"""The catalog store on SQLite: idempotent import, update/add/retire, export round trip (the cases are shared with
the PostgreSQL tier: tests/support/catalog_store_cases.py), and catalog URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.catalog_store_cases import *  # noqa: F403 - the shared cases, run here on SQLite
from wenu_stream.catalog.store import parse_url
from wenu_stream.errors import ConfigError


@pytest.fixture
def catalog_url(tmp_path: Path) -> str:
    """A fresh, empty SQLite catalog."""
    return f"sqlite:///{tmp_path}/catalog.db"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://db/catalog", "unsupported catalog URL 'mysql'"),
        ("catalog.db", "unsupported catalog URL 'catalog.db'"),
        ("sqlite:///", "the sqlite URL names no file"),
        ("sqlite://host/x.db", "unsupported catalog URL 'sqlite'"),
    ],
)
def test_a_bad_url_names_the_flag_and_env_var(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_url(url)
    assert caught.value.problem == problem
    assert "--catalog" in caught.value.field and "WENU_CATALOG_URL" in caught.value.field
    assert "sqlite:///" in caught.value.fix and "postgresql://" in caught.value.fix
