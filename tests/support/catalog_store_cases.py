"""The catalog store's behaviour, as test cases shared by two tiers: SQLite in tests/unit/catalog/test_store.py,
a real PostgreSQL in tests/integration/test_catalog_store_postgres.py. Each module that imports these cases
provides the ``catalog_url`` fixture (a fresh, empty catalog database)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.catalog import spec_document
from wenu_stream.catalog.document import CatalogDocument, decode, encode, validate
from wenu_stream.catalog.store import CatalogStore
from wenu_stream.testing import SettableClock


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def store(catalog_url: str, clock: SettableClock) -> Iterator[CatalogStore]:
    with CatalogStore(catalog_url, now=clock) as opened:
        yield opened


def doc(raw: dict[str, Any]) -> CatalogDocument:
    """The validated document, rules in id order (the order export writes them in)."""
    result = validate(raw)
    assert result.document is not None, result.problems
    return CatalogDocument(result.document.companies, sorted(result.document.alarm_rules, key=lambda r: r.id))


def rows(store: CatalogStore, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in store._execute(sql).fetchall()]


def test_a_new_store_is_empty_at_version_0(store: CatalogStore) -> None:
    assert store.version() == 0
    assert store.export_document() == CatalogDocument([], [])


def test_first_import_adds_everything(store: CatalogStore) -> None:
    summary = store.import_document(doc(spec_document()))
    assert (summary.added, summary.updated, summary.retired, summary.changed) == (10, 0, 0, 10)
    assert summary.version == 1 == store.version()
    assert summary.tables["channels"] == {"added": 2, "updated": 0, "retired": 0}
    assert summary.tables["alarm_rules"]["added"] == 5


def test_importing_the_same_document_twice_changes_nothing(store: CatalogStore) -> None:
    store.import_document(doc(spec_document()))
    again = store.import_document(doc(spec_document()))
    assert (again.changed, again.version, again.tables) == (0, 1, {})
    assert store.version() == 1


def test_a_changed_document_updates_adds_and_retires(store: CatalogStore, clock: SettableClock) -> None:
    store.import_document(doc(spec_document()))
    raw = spec_document()
    channels = raw["companies"][0]["sites"][0]["devices"][0]["channels"]
    channels[0]["scale"] = 0.001  # update
    channels[0]["unit"] = "kW"
    del channels[1]  # retire the energy channel, and its consumption rule with it
    raw["alarm_rules"].pop()
    raw["companies"][0]["sites"][0]["devices"].append(  # add
        {"id": "TM-1", "channels": [{"ch": "temperature_c", "series": "acme-hq.temp", "kind": "gauge"}]}
    )
    clock.ms += 60_000
    summary = store.import_document(doc(raw))
    assert summary.tables == {
        "devices": {"added": 1, "updated": 0, "retired": 0},
        "channels": {"added": 1, "updated": 1, "retired": 1},
        "alarm_rules": {"added": 0, "updated": 0, "retired": 1},
    }
    assert (summary.added, summary.updated, summary.retired, summary.version) == (2, 1, 2, 2)
    assert store.export_document() == doc(raw)


def test_retired_rows_are_kept_with_when_and_at_which_version(
    store: CatalogStore, clock: SettableClock
) -> None:
    store.import_document(doc(spec_document()))
    raw = spec_document()
    raw["companies"][0]["sites"][0]["devices"][0]["channels"].pop()
    raw["alarm_rules"].pop()
    clock.ms += 5_000
    store.import_document(doc(raw))
    assert rows(
        store, "SELECT series, retired_at, changed_version FROM channels WHERE retired_at IS NULL"
    ) == [("acme-hq.main.power", None, 1)]
    retired = rows(
        store, "SELECT series, retired_at, changed_version FROM channels WHERE retired_at IS NOT NULL"
    )
    assert retired == [("acme-hq.main.energy", clock.ms, 2)]
    assert "acme-hq.main.energy" not in encode(store.export_document()).decode()


def test_a_retired_entry_that_comes_back_is_added_again(store: CatalogStore) -> None:
    store.import_document(doc(spec_document()))
    store.import_document(doc({"companies": []}))
    assert store.export_document() == CatalogDocument([], [])
    back = store.import_document(doc(spec_document()))
    assert (back.added, back.updated, back.retired, back.version) == (10, 0, 0, 3)
    assert rows(store, "SELECT COUNT(*) FROM channels WHERE retired_at IS NULL") == [(2,)]


def test_moving_a_device_to_another_site_is_an_update(store: CatalogStore) -> None:
    raw = spec_document()
    raw["companies"][0]["sites"].append({"id": "acme-plant", "timezone": "UTC", "devices": []})
    store.import_document(doc(raw))
    sites = raw["companies"][0]["sites"]
    sites[1]["devices"] = sites[0]["devices"]
    sites[0]["devices"] = []
    summary = store.import_document(doc(raw))
    assert summary.tables == {"devices": {"added": 0, "updated": 1, "retired": 0}}
    snapshot = store.snapshot()
    info = snapshot.lookup("EM-000001", "active_power_w")
    assert info is not None and (info.site, info.timezone) == ("acme-plant", "UTC")


def test_export_reimports_to_no_change(store: CatalogStore) -> None:
    raw = spec_document()
    raw["alarm_rules"].append(
        {
            "id": "a-match",
            "match": {"company": "acme", "kind": "counter"},
            "type": "consumption",
            "window": "1mo",
            "max": 9.5,
            "severity": "minor",
        }
    )
    raw["companies"][0]["sites"][0]["devices"][0]["channels"][0]["offset"] = -0.25
    store.import_document(doc(raw))
    exported = store.export_document()
    reimported = decode(encode(exported)).document
    assert reimported == exported
    assert store.import_document(reimported).changed == 0
    assert store.version() == 1
    assert exported == doc(raw)


def test_the_snapshot_matches_the_store_version(store: CatalogStore) -> None:
    store.import_document(doc(spec_document()))
    snapshot = store.snapshot()
    assert snapshot.version == store.version() == 1
    assert set(snapshot.series) == {"acme-hq.main.power", "acme-hq.main.energy"}
    assert [r.id for r in snapshot.rules_for("acme-hq.main.energy")] == ["hq-daily-energy"]


def test_reopening_keeps_the_catalog_and_migrations_run_once(catalog_url: str) -> None:
    with CatalogStore(catalog_url) as first:
        first.import_document(doc(spec_document()))
    with CatalogStore(catalog_url) as second:
        assert second.version() == 1
        assert rows(second, "SELECT version FROM catalog_schema") == [(1,), (2,)]
        assert second.export_document() == doc(spec_document())
