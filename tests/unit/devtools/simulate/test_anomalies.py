"""Injected anomalies: the fleet's rules fire exactly the expected notifications, and never on normal readings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import msgspec
import pytest

from tests.support.records import KEYS
from wenu_stream.alarms.engine import Transition
from wenu_stream.alarms.rules import parse_rules
from wenu_stream.alarms.shard import AlarmEngine
from wenu_stream.devtools.simulate import FaultRates, SimulationConfig, UserRecord, fleet_catalog, generate
from wenu_stream.devtools.simulate.faults import ACCEPTED
from wenu_stream.devtools.simulate.generator import expected_alarms, shard_of
from wenu_stream.errors import ConfigError
from wenu_stream.model import SeriesReading

FOUR_SHARDS = tuple((i * (2**128 // 4), (i + 1) * (2**128 // 4) - 1) for i in range(4))
FAULTS = FaultRates(
    corrupt=0.02,
    unknown_key=0.01,
    tamper=0.01,
    malformed=0.01,
    duplicate=0.05,
    reorder=0.1,
    gap=0.002,
    counter_reset=0.002,
    reorder_bound_s=10,
    gap_s=20,
)


def channels(catalog: dict) -> dict[tuple[str, str], dict]:
    return {
        (d["id"], c["ch"]): {**c, "company": company["id"], "site": site["id"], "timezone": site["timezone"]}
        for company in catalog["companies"]
        for site in company["sites"]
        for d in site["devices"]
        for c in d["channels"]
    }


def readings(users: Iterable[UserRecord], catalog: dict) -> list[SeriesReading]:
    """Enrich accepted messages with the catalog, as the consumer does (scale 1, offset 0)."""
    mapped = channels(catalog)
    out = []
    for u in users:
        if u.expect != ACCEPTED:
            continue  # dead-lettered, or a repeat the consumer drops
        for i, r in enumerate(u.message.readings):
            c = mapped[(u.message.device, r.ch)]
            out.append(
                SeriesReading(
                    series=c["series"],
                    company=c["company"],
                    site=c["site"],
                    timezone=c["timezone"],
                    kind=c["kind"],
                    unit=c["unit"],
                    device=u.message.device,
                    ch=r.ch,
                    seq=u.message.seq,
                    index=i,
                    t=r.t,
                    value=r.v,
                    raw_value=r.v,
                )
            )
    return out


def evaluate(cfg: SimulationConfig) -> list[Transition]:
    """Every transition the fleet's rules make over the run, one engine per shard, in shard (emission) order."""
    catalog = fleet_catalog(cfg)
    rules = parse_rules(catalog["alarm_rules"])
    per_shard: dict[int | str, list[UserRecord]] = {}
    for record in generate(cfg, KEYS):
        for u in record.users:
            per_shard.setdefault(shard_of(u.partition_key, FOUR_SHARDS), []).append(u)
    found: list[Transition] = []
    for users in per_shard.values():
        found += AlarmEngine(rules).apply(readings(users, catalog))
    return found


def moves(found: Iterable[Transition]) -> Counter[tuple[str, str, str, int, str]]:
    return Counter((t.rule, t.series, t.to_state, t.at, t.transition_id) for t in found)


@pytest.mark.parametrize(("interval_s", "duration_s", "seed"), [(5, 60, 7), (1, 45, 3), (10, 90, 11)])
def test_the_rules_make_exactly_the_expected_notifications(
    interval_s: float, duration_s: float, seed: int
) -> None:
    cfg = SimulationConfig(
        devices=60,
        interval_s=interval_s,
        duration_s=duration_s,
        seed=seed,
        aggregate=10,
        shard_ranges=FOUR_SHARDS,
        faults=FAULTS,
        anomalies=True,
    )
    want = expected_alarms(cfg)
    assert moves(evaluate(cfg)) == Counter((e.rule, e.series, e.state, e.at, e.transition_id) for e in want)
    firing = {e.rule for e in want if e.state == "firing"}
    assert firing == {"voltage-high", "voltage-jump", "temperature-stuck", "power-silent", "water-daily"}
    assert len(want) == 9  # every one resolves but the daily water window, which outlasts the run


@pytest.mark.parametrize("seed", [1, 2])
def test_the_rules_never_fire_on_normal_readings(seed: int) -> None:
    # Three hours from 13:00 at the Chilean sites (17:00 in Madrid), every 15 s, late and repeated messages included.
    cfg = SimulationConfig(
        devices=40,
        interval_s=15,
        duration_s=3 * 3600,
        seed=seed,
        start_ms=1_764_345_600_000,
        faults=FaultRates(duplicate=0.05, reorder=0.1, reorder_bound_s=10),
    )
    assert evaluate(cfg) == []


def test_a_consumption_window_that_ends_in_the_run_resolves_at_its_end() -> None:
    # 2025-11-28T22:59:00Z: the Madrid day (UTC+1) ends a minute in.
    cfg = SimulationConfig(
        devices=8, interval_s=5, duration_s=120, seed=5, start_ms=1_764_370_740_000, anomalies=True
    )
    water = [e for e in expected_alarms(cfg) if e.rule == "water-daily"]
    assert [(e.state, e.at) for e in water][1] == ("ok", 1_764_370_800_000)
    assert moves(t for t in evaluate(cfg) if t.rule == "water-daily") == Counter(
        (e.rule, e.series, e.state, e.at, e.transition_id) for e in water
    )


def test_a_window_the_idle_clock_would_decide_is_left_out() -> None:
    # The Madrid day ends within a minute of the last reading: the consumer's idle clock, not the data, would close it.
    cfg = SimulationConfig(
        devices=8, interval_s=5, duration_s=60, seed=5, start_ms=1_764_370_690_000, anomalies=True
    )
    assert "water-daily" not in {e.rule for e in expected_alarms(cfg)}
    assert "water-daily" not in {t.rule for t in evaluate(cfg)}


def test_anomalies_leave_other_devices_and_the_tally_alone() -> None:
    base = SimulationConfig(devices=12, interval_s=5, duration_s=60, seed=4)
    plain = [u for r in generate(base, KEYS) for u in r.users]
    broken = [u for r in generate(msgspec.structs.replace(base, anomalies=True), KEYS) for u in r.users]
    touched = {"EM-000001", "EM-000002", "EM-000003", "TM-000001", "WM-000001"}
    assert [u.message.readings for u in plain if u.message.device not in touched] == [
        u.message.readings for u in broken if u.message.device not in touched
    ]
    silent = [u for u in broken if u.message.device == "EM-000003"]
    assert len(silent) == len([u for u in plain if u.message.device == "EM-000003"]) - 6  # 30 s at 5 s


def test_a_run_too_short_for_the_anomalies_is_refused() -> None:
    with pytest.raises(ConfigError, match="too short"):
        list(generate(SimulationConfig(devices=8, interval_s=5, duration_s=30, seed=1, anomalies=True), KEYS))


def test_the_end_of_the_run_fires_no_data_only_once_the_clock_got_there() -> None:
    """A consumer that outlives the simulation sees its meters fall silent: no_data fires at last + after_s, with the
    engine's own transition id, if and only if the shard's clock reached that time."""
    from wenu_stream.alarms.engine import transition_id
    from wenu_stream.alarms.rules import NoDataRule, StuckRule
    from wenu_stream.devtools.simulate.anomalies import silence_after_run

    rule = NoDataRule(id="power-silent", series="s", after_s=30, severity="warning")
    last = 1_764_300_000_000
    assert silence_after_run(rule, "s", last, None) is None  # never ticked
    assert silence_after_run(rule, "s", last, last + 29_999) is None
    fired = silence_after_run(rule, "s", last, last + 30_000)
    assert fired is not None and (fired.at, fired.state, fired.severity) == (
        last + 30_000,
        "firing",
        "warning",
    )
    assert fired.transition_id == transition_id("power-silent", "s", last, "firing")
    assert (
        silence_after_run(StuckRule(id="x", series="s", count=3, severity="minor"), "s", last, last + 10**9)
        is None
    )
