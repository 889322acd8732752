"""The catalog snapshot and the read-through cache, driven by a settable clock."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.catalog import spec_document
from wenu_stream.catalog.directory import CatalogDirectory, CatalogSnapshot, ChannelInfo, build_snapshot
from wenu_stream.catalog.document import validate
from wenu_stream.testing import SettableClock


class FakeStore:
    """A catalog store in memory: counts how often it is asked, can be made to fail."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw, self.version_no = raw, 1
        self.loads = self.version_checks = 0
        self.down = False

    def change(self, raw: dict[str, Any]) -> None:
        self.raw, self.version_no = raw, self.version_no + 1

    def version(self) -> int:
        self.version_checks += 1
        if self.down:
            raise ConnectionError("catalog down")
        return self.version_no

    def load(self) -> CatalogSnapshot:
        self.loads += 1
        if self.down:
            raise ConnectionError("catalog down")
        document = validate(self.raw).document
        assert document is not None
        return build_snapshot(self.version_no, document)


def renamed_power_series() -> dict[str, Any]:
    raw = spec_document()
    raw["companies"][0]["sites"][0]["devices"][0]["channels"][0]["series"] = "acme-hq.main.power2"
    for rule in raw["alarm_rules"]:
        if rule["series"] == "acme-hq.main.power":
            rule["series"] = "acme-hq.main.power2"
    return raw


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(1_000_000)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(spec_document())


@pytest.fixture
def directory(store: FakeStore, clock: SettableClock) -> CatalogDirectory:
    return CatalogDirectory(store.load, clock, refresh_s=30, version=store.version)


def test_lookup_gives_everything_enrichment_needs(directory: CatalogDirectory) -> None:
    assert directory.lookup("EM-000001", "energy_kwh") == ChannelInfo(
        series="acme-hq.main.energy",
        company="acme",
        site="acme-hq",
        timezone="America/Santiago",
        kind="counter",
        unit="kWh",
        scale=1.0,
        offset=0.0,
    )
    assert directory.lookup("EM-000001", "nope") is None
    assert directory.lookup("EM-999999", "energy_kwh") is None


def test_rules_for_a_series_include_match_rules_in_id_order(store: FakeStore, clock: SettableClock) -> None:
    raw = spec_document()
    raw["alarm_rules"].append(
        {
            "id": "acme-counters",
            "match": {"company": "acme", "kind": "counter"},
            "type": "stuck",
            "count": 3,
            "severity": "minor",
        }
    )
    store.change(raw)
    directory = CatalogDirectory(store.load, clock, refresh_s=30)
    assert [r.id for r in directory.rules_for("acme-hq.main.energy")] == ["acme-counters", "hq-daily-energy"]
    assert [r.id for r in directory.rules_for("acme-hq.main.power")] == [
        "hq-power-high",
        "hq-power-jump",
        "hq-power-silent",
        "hq-power-stuck",
    ]
    assert directory.rules_for("unknown") == ()
    info = directory.series_info("acme-hq.main.power")
    assert info is not None and info.unit == "W"


def test_nothing_is_asked_before_the_interval_passes(
    directory: CatalogDirectory, store: FakeStore, clock: SettableClock
) -> None:
    store.change(renamed_power_series())
    clock.advance(29.999)
    assert directory.lookup("EM-000001", "active_power_w").series == "acme-hq.main.power"  # type: ignore[union-attr]
    assert (store.loads, store.version_checks) == (1, 0)
    assert directory.age_s == pytest.approx(29.999)


def test_a_change_takes_effect_on_the_next_refresh(
    directory: CatalogDirectory, store: FakeStore, clock: SettableClock
) -> None:
    store.change(renamed_power_series())
    clock.advance(30)
    info = directory.lookup("EM-000001", "active_power_w")
    assert info is not None and info.series == "acme-hq.main.power2"
    assert directory.rules_for("acme-hq.main.power2")[0].id == "hq-power-high"
    assert directory.snapshot().version == 2
    assert (store.loads, store.version_checks, directory.age_s) == (2, 1, 0)


def test_an_unchanged_version_does_not_reload(
    directory: CatalogDirectory, store: FakeStore, clock: SettableClock
) -> None:
    before = directory.snapshot()
    for _ in range(3):
        clock.advance(31)
        assert directory.snapshot() is before
    assert (store.loads, store.version_checks, directory.age_s) == (1, 3, 0)


def test_without_a_version_probe_every_refresh_reloads(store: FakeStore, clock: SettableClock) -> None:
    directory = CatalogDirectory(store.load, clock, refresh_s=10)
    clock.advance(10)
    directory.snapshot()
    clock.advance(10)
    directory.snapshot()
    assert store.loads == 3


def test_a_failed_refresh_keeps_the_last_snapshot_and_waits_an_interval(
    directory: CatalogDirectory, store: FakeStore, clock: SettableClock
) -> None:
    before = directory.snapshot()
    store.down = True
    clock.advance(30)
    assert directory.snapshot() is before
    assert isinstance(directory.last_error, ConnectionError)
    clock.advance(10)
    directory.snapshot()
    assert store.version_checks == 1  # not retried on every call
    assert directory.age_s == 40
    store.down = False
    store.change(renamed_power_series())
    clock.advance(20)
    assert directory.snapshot().version == 2
    assert directory.last_error is None and directory.age_s == 0


def test_the_first_load_failing_is_an_error(store: FakeStore, clock: SettableClock) -> None:
    store.down = True
    with pytest.raises(ConnectionError):
        CatalogDirectory(store.load, clock, refresh_s=30)


def test_refresh_now_ignores_the_interval(directory: CatalogDirectory, store: FakeStore) -> None:
    store.change(renamed_power_series())
    assert directory.refresh().version == 2
