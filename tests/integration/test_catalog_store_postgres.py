"""The catalog store on a real PostgreSQL server: the cases of tests/support/catalog_store_cases.py."""

from __future__ import annotations

import pytest

from tests.support.catalog_store_cases import *  # noqa: F403 - the shared cases, run here on PostgreSQL

pytestmark = pytest.mark.integration


@pytest.fixture
def catalog_url(postgres_database: str) -> str:
    """A fresh, empty PostgreSQL database."""
    return postgres_database
