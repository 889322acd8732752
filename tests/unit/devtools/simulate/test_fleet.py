"""The catalog document of the simulated fleet follows docs/catalog.md and maps every simulated channel."""

from __future__ import annotations

import re
from collections import Counter
from zoneinfo import ZoneInfo

from tests.support.records import KEYS
from wenu_stream.devtools.simulate import SimulationConfig, fleet_catalog, generate

ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}\Z")


def channels(catalog: dict) -> dict[tuple[str, str], dict]:
    return {
        (d["id"], c["ch"]): c
        for company in catalog["companies"]
        for site in company["sites"]
        for d in site["devices"]
        for c in d["channels"]
    }


def test_every_simulated_channel_is_mapped_once() -> None:
    cfg = SimulationConfig(devices=23, duration_s=2)
    mapped = channels(fleet_catalog(cfg))
    sent = {
        (u.message.device, r.ch) for rec in generate(cfg, KEYS) for u in rec.users for r in u.message.readings
    }
    assert sent == set(mapped)
    series = Counter(c["series"] for c in mapped.values())
    assert max(series.values()) == 1
    for c in mapped.values():
        assert ID.match(c["series"]) and c["kind"] in ("gauge", "counter")
        assert (c["scale"], c["offset"]) == (1.0, 0.0) and c["unit"]
    assert {c["kind"] for (_, ch), c in mapped.items() if ch in ("energy_kwh", "volume_m3")} == {"counter"}


def test_sites_have_real_zones_and_unique_ids() -> None:
    catalog = fleet_catalog(SimulationConfig(devices=40))
    sites = [s for c in catalog["companies"] for s in c["sites"]]
    zones = {s["timezone"] for s in sites}
    assert {"America/Santiago", "Europe/Madrid", "UTC"} <= zones
    for zone in zones:
        ZoneInfo(zone)
    ids = [c["id"] for c in catalog["companies"]] + [s["id"] for s in sites]
    assert len(ids) == len(set(ids)) and all(ID.match(i) for i in ids)


def test_alarm_rules_of_every_type_watch_known_series() -> None:
    catalog = fleet_catalog(SimulationConfig(devices=8))
    known = {c["series"] for c in channels(catalog).values()}
    rules = catalog["alarm_rules"]
    assert {r["type"] for r in rules} == {"threshold", "no_data", "rate_of_change", "stuck", "consumption"}
    assert len({r["id"] for r in rules}) == len(rules)
    for rule in rules:
        assert ("series" in rule) != ("match" in rule)
        assert rule.get("series", next(iter(known))) in known


def test_catalog_does_not_depend_on_the_seed() -> None:
    assert fleet_catalog(SimulationConfig(devices=9, seed=1)) == fleet_catalog(
        SimulationConfig(devices=9, seed=2)
    )
