"""Alarm instances move ok -> pending -> firing -> ok as the spec says, and replays reach the same result."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wenu_stream.alarms.engine import (
    InstanceState,
    Transition,
    advance,
    evaluate,
    notification,
    transition_id,
)
from wenu_stream.alarms.rules import (
    AlarmRule,
    ConsumptionRule,
    Match,
    NoDataRule,
    RateOfChangeRule,
    StuckRule,
    ThresholdRule,
)
from wenu_stream.alarms.shard import AlarmEngine
from wenu_stream.model import SeriesReading

MIN = 60_000


def reading(
    t_ms: int, value: float, series: str = "s", kind: str = "gauge", tz: str = "UTC"
) -> SeriesReading:
    return SeriesReading(
        series=series, company="acme", site="hq", timezone=tz, kind=kind, unit="W",
        device="d-" + series, ch="c", seq=t_ms, index=0, t=t_ms, value=value, raw_value=value,
    )  # fmt: skip


def run(
    rule: AlarmRule, points: Sequence[tuple[int, float]], **kw: str
) -> tuple[InstanceState, list[Transition]]:
    """Feed (t_ms, value) points to one instance; return its state and every transition."""
    state: InstanceState | None = None
    found: list[Transition] = []
    for t, v in points:
        state, out = evaluate(rule, state, reading(t, v, **kw))
        found.extend(out)
    assert state is not None
    return state, found


def moves(found: list[Transition]) -> list[tuple[str, str, int, float | None]]:
    return [(x.from_state, x.to_state, x.at, x.value) for x in found]


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


HIGH = ThresholdRule(id="high", severity="critical", series="s", op=">", value=100, clear=90, for_s=120)


def test_threshold_is_pending_until_it_held_for_s_then_fires() -> None:
    state, found = run(HIGH, [(0, 50), (10_000, 150), (60_000, 150)])
    assert (state.state, state.onset, found) == ("pending", 10_000, [])
    state, found = run(HIGH, [(0, 50), (10_000, 150), (60_000, 150), (130_000, 160)])
    assert moves(found) == [("pending", "firing", 130_000, 160.0)]
    assert found[0].transition_id == transition_id("high", "s", 10_000, "firing")
    assert (found[0].company, found[0].site, found[0].severity) == ("acme", "hq", "critical")


def test_pending_that_breaks_goes_back_to_ok_without_a_notification() -> None:
    state, found = run(HIGH, [(0, 150), (60_000, 80), (100_000, 150), (150_000, 150)])
    assert (state.state, state.onset, found) == ("pending", 100_000, [])


def test_threshold_hysteresis_holds_between_clear_and_value_and_clears_below() -> None:
    points = [(0, 150), (120_000, 150), (130_000, 95), (140_000, 90.5), (150_000, 90), (160_000, 95)]
    state, found = run(HIGH, points)
    assert moves(found) == [("pending", "firing", 120_000, 150.0), ("firing", "ok", 150_000, 90.0)]
    assert found[1].transition_id == transition_id("high", "s", 0, "ok")
    assert state.state == "ok"


def test_threshold_with_for_s_zero_fires_at_once_and_lower_ops_work() -> None:
    low = ThresholdRule(id="low", severity="minor", series="s", op="<=", value=10)
    _, found = run(low, [(0, 11), (1000, 10), (2000, 10.5)])
    assert moves(found) == [("ok", "firing", 1000, 10.0), ("firing", "ok", 2000, 10.5)]


def test_rate_of_change_is_scaled_to_a_minute_between_irregular_readings() -> None:
    jump = RateOfChangeRule(id="jump", severity="major", series="s", max_abs_delta_per_min=60)
    # +20 in 30 s is 40/min; +20 in 10 s is 120/min; +10 in 60 s is 10/min; -61 in 60 s is 61/min.
    points = [(0, 0), (30_000, 20), (40_000, 40), (100_000, 50), (160_000, -11)]
    state, found = run(jump, points)
    assert [m[:3] for m in moves(found)] == [
        ("ok", "firing", 40_000),
        ("firing", "ok", 100_000),
        ("ok", "firing", 160_000),
    ]
    assert [x.value for x in found] == pytest.approx([120.0, 10.0, 61.0])
    assert state.state == "firing"


def test_stuck_fires_after_count_equal_values_and_resolves_on_a_different_one() -> None:
    stuck = StuckRule(id="stuck", severity="minor", series="s", count=3)
    state, found = run(stuck, [(0, 1), (1, 2), (2, 2), (3, 2), (4, 2), (5, 3), (6, 3)])
    assert moves(found) == [("ok", "firing", 3, 2.0), ("firing", "ok", 5, 3.0)]
    assert (state.state, state.run) == ("ok", 2)


def test_consumption_follows_counter_resets_and_resolves_when_the_window_ends() -> None:
    hourly = ConsumptionRule(id="use", severity="major", series="s", window="1h", max=10)
    # 100 adds nothing; +4; reset to 2 adds 2; +5 -> 11 > 10 fires; the next hour resolves and restarts.
    points = [(0, 100), (10 * MIN, 104), (20 * MIN, 2), (30 * MIN, 7), (40 * MIN, 8), (60 * MIN, 9)]
    state, found = run(hourly, points, kind="counter")
    assert moves(found) == [("ok", "firing", 30 * MIN, 11.0), ("firing", "ok", 60 * MIN, 12.0)]
    assert (state.state, state.consumed, state.window_start) == ("ok", 1.0, 60 * MIN)


def test_consumption_resolves_on_the_watermark_at_the_window_end() -> None:
    hourly = ConsumptionRule(id="use", severity="major", series="s", window="15m", max=1)
    state, _ = run(hourly, [(0, 0), (MIN, 5)], kind="counter")
    assert state.state == "firing"
    assert advance(hourly, state, 14 * MIN)[1] == ()
    _, out = advance(hourly, state, 16 * MIN)
    assert moves(list(out)) == [("firing", "ok", 15 * MIN, 5.0)]
    assert out[0].transition_id == transition_id("use", "s", MIN, "ok")


def test_a_santiago_spring_forward_day_has_23_hours() -> None:
    daily = ConsumptionRule(id="day", severity="major", series="s", window="1d", max=10)
    # 2024-09-08 in America/Santiago starts 04:00Z (-04) and ends 03:00Z on the 9th (-03).
    points = [(ms("2024-09-08T05:00:00+00:00"), 0), (ms("2024-09-09T02:30:00+00:00"), 20),
              (ms("2024-09-09T03:30:00+00:00"), 21)]  # fmt: skip
    state, found = run(daily, points, kind="counter", tz="America/Santiago")
    assert moves(found) == [
        ("ok", "firing", ms("2024-09-09T02:30:00+00:00"), 20.0),
        ("firing", "ok", ms("2024-09-09T03:00:00+00:00"), 20.0),
    ]
    assert (state.window_start, state.window_end) == (
        ms("2024-09-09T03:00:00+00:00"),
        ms("2024-09-10T03:00:00+00:00"),
    )


def test_a_madrid_fall_back_day_has_25_hours() -> None:
    daily = ConsumptionRule(id="day", severity="major", series="s", window="1d", max=10)
    # 2024-10-27 in Europe/Madrid runs from 22:00Z on the 26th to 23:00Z on the 27th.
    points = [(ms("2024-10-26T22:30:00+00:00"), 0), (ms("2024-10-27T22:30:00+00:00"), 6),
              (ms("2024-10-27T22:45:00+00:00"), 12)]  # fmt: skip
    state, found = run(daily, points, kind="counter", tz="Europe/Madrid")
    assert moves(found) == [("ok", "firing", ms("2024-10-27T22:45:00+00:00"), 12.0)]
    assert state.window_end - state.window_start == 25 * 60 * MIN  # type: ignore[operator]


def test_no_data_fires_on_the_watermark_and_resolves_at_the_next_reading() -> None:
    silent = NoDataRule(id="silent", severity="warning", match=Match(company="acme"), after_s=60)
    engine = AlarmEngine([silent])
    found = engine.apply(
        [reading(0, 1, "a"), reading(0, 1, "b"), reading(30_000, 1, "b"), reading(59_000, 1, "b")]
    )
    assert found == []
    found = engine.apply([reading(61_000, 1, "b")])  # the shard's time passes a's deadline
    assert [(x.series, x.to_state, x.at, x.onset) for x in found] == [("a", "firing", 60_000, 0)]
    found = engine.apply([reading(70_000, 2, "a")])
    assert [(x.series, x.to_state, x.at) for x in found] == [("a", "ok", 70_000)]
    assert engine.tick(100_000) == []
    found = engine.tick(200_000)  # the runtime advances an idle shard by the wall clock
    assert [(x.series, x.to_state, x.at) for x in found] == [
        ("b", "firing", 121_000),
        ("a", "firing", 130_000),
    ]
    assert engine.tick(300_000) == []


def test_the_pure_no_data_advance_fires_once() -> None:
    silent = NoDataRule(id="silent", severity="warning", series="s", after_s=60)
    state, _ = evaluate(silent, None, reading(1000, 7))
    assert advance(silent, state, 60_999)[1] == ()
    _, out = advance(silent, state, 61_000)
    assert moves(list(out)) == [("ok", "firing", 61_000, 7.0)]
    assert advance(silent, state, 99_000)[1] == ()


def test_a_reading_not_newer_than_the_last_evaluated_is_skipped() -> None:
    stuck = StuckRule(id="stuck", severity="minor", series="s", count=2)
    state, _ = evaluate(stuck, None, reading(10_000, 1))
    version = state.version
    for older in (reading(5_000, 1), reading(10_000, 1)):
        state, out = evaluate(stuck, state, older)
        assert (out, state.version, state.run, state.last_t) == ((), version, 1, 10_000)
    state, out = evaluate(stuck, state, reading(11_000, 1))
    assert moves(list(out)) == [("ok", "firing", 11_000, 1.0)]


def test_a_non_finite_value_is_skipped() -> None:
    state, _ = evaluate(HIGH, None, reading(0, 1))
    state, out = evaluate(HIGH, state, reading(1, float("nan")))
    assert (out, state.last_t, state.version) == ((), 0, 1)


ALL_RULES: list[AlarmRule] = [
    HIGH,
    ThresholdRule(id="now", severity="major", match=Match(kind="gauge"), op=">=", value=120),
    RateOfChangeRule(id="jump", severity="major", match=Match(kind="gauge"), max_abs_delta_per_min=100),
    StuckRule(id="stuck", severity="minor", match=Match(), count=4),
    NoDataRule(id="silent", severity="warning", match=Match(company="acme"), after_s=90),
    ConsumptionRule(id="use", severity="major", match=Match(kind="counter"), window="15m", max=30),
]


def stream() -> list[SeriesReading]:
    """A deterministic mixed stream over a gauge, a counter and a flaky gauge, with late readings."""
    out: list[SeriesReading] = []
    for i in range(400):
        t = i * 20_000
        out.append(
            reading(t, [50, 150, 95, 130, 130, 130, 130, 130, 130, 130, 95, 80][i % 12] + (i % 3), "s")
        )
        out.append(reading(t + 5, (i * 7) % 97, "energy", kind="counter", tz="America/Santiago"))
        if i % 13 < 6:
            out.append(reading(t + 7, 42.0, "flaky"))
        if i % 17 == 0 and i:
            out.append(reading(t - 60_000, 999, "s"))  # late: skipped by the instances of s
    return out


def test_a_replay_reaches_the_same_states_and_transition_ids() -> None:
    first, second = AlarmEngine(ALL_RULES), AlarmEngine(ALL_RULES)
    found_first = first.apply(stream()) + first.tick(10**10)
    found_second = second.apply(stream()) + second.tick(10**10)
    assert {x.rule for x in found_first} == {"high", "now", "jump", "stuck", "silent", "use"}
    assert found_first == found_second
    assert first.take_changes() == second.take_changes()
    assert len({x.transition_id for x in found_first}) == len(found_first)


def test_a_restart_from_stored_states_continues_as_if_nothing_happened() -> None:
    readings = stream()
    whole = AlarmEngine(ALL_RULES)
    expected = whole.apply(readings)
    before = AlarmEngine(ALL_RULES)
    found = before.apply(readings[:500])
    changes = before.take_changes()
    stored = [msgspec.msgpack.encode(s) for s in changes.upserts]
    after = AlarmEngine(ALL_RULES)
    assert (
        after.load([msgspec.msgpack.decode(b, type=InstanceState) for b in stored], changes.watermark) == []
    )
    found += after.apply(readings[500:])
    assert found == expected


def test_states_round_trip_through_msgpack() -> None:
    engine = AlarmEngine(ALL_RULES)
    engine.apply(stream()[:300])
    states = engine.take_changes().upserts
    assert {s.rule_type for s in states} == {"threshold", "rate_of_change", "stuck", "no_data", "consumption"}
    for s in states:
        assert msgspec.msgpack.decode(msgspec.msgpack.encode(s), type=InstanceState) == s
    assert engine.take_changes().upserts == []


def test_swapping_rules_drops_removed_and_retyped_instances_and_keeps_the_rest() -> None:
    engine = AlarmEngine(ALL_RULES)
    engine.apply([reading(0, 150, "s"), reading(1, 5, "energy", kind="counter")])
    engine.take_changes()
    retyped = StuckRule(id="jump", severity="major", match=Match(kind="gauge"), count=3)
    stricter = ThresholdRule(id="high", severity="critical", series="s", op=">", value=100, clear=90, for_s=0)
    engine.set_rules([stricter, retyped])
    changes = engine.take_changes()
    assert changes.removed == [("jump", "s"), ("now", "s"), ("silent", "energy"), ("silent", "s"),
                               ("stuck", "energy"), ("stuck", "s"), ("use", "energy")]  # fmt: skip
    found = engine.apply([reading(2, 150, "s")])
    assert [(x.rule, x.from_state, x.onset) for x in found] == [("high", "pending", 0)]
    assert engine.state("jump", "s") is not None and engine.state("jump", "s").rule_type == "stuck"  # type: ignore[union-attr]
    assert len(engine) == 2


def test_a_rule_that_no_longer_selects_a_series_drops_its_instance_at_the_next_reading() -> None:
    gauges = StuckRule(id="stuck", severity="minor", match=Match(kind="gauge"), count=3)
    engine = AlarmEngine([gauges])
    engine.apply([reading(0, 1, "s")])
    engine.set_rules([StuckRule(id="stuck", severity="minor", match=Match(kind="counter"), count=3)])
    engine.take_changes()
    engine.apply([reading(1, 1, "s")])
    assert (engine.state("stuck", "s"), engine.take_changes().removed) == (None, [("stuck", "s")])


def test_load_reports_states_no_rule_owns() -> None:
    engine = AlarmEngine([HIGH])
    orphan = InstanceState(rule="gone", series="s", rule_type="stuck")
    retyped = InstanceState(rule="high", series="s", rule_type="stuck")
    assert engine.load([orphan, retyped]) == [("gone", "s"), ("high", "s")]
    assert engine.take_changes().removed == [("gone", "s"), ("high", "s")]


def test_a_state_saved_ahead_of_its_checkpoint_makes_the_replayed_overlap_harmless() -> None:
    readings = stream()
    whole = AlarmEngine(ALL_RULES)
    whole.apply(readings[:500])
    expected = whole.apply(readings[500:])
    saved = AlarmEngine(ALL_RULES)
    saved.apply(readings[:500])
    restarted = AlarmEngine(ALL_RULES)
    restarted.load(saved.states(), saved.watermark)
    # The checkpoint lagged 80 records behind the saved states: those replay first.
    assert restarted.apply(readings[420:]) == expected
    assert restarted.states() == whole.states()


def test_a_notification_carries_the_spec_fields_and_filter_attributes() -> None:
    _, (fired,) = run(HIGH, [(0, 150), (120_000, 150)])
    body, attributes = notification(fired)
    assert msgspec.json.decode(body) == {
        "rule": "high", "series": "s", "company": "acme", "site": "hq", "severity": "critical",
        "state": "firing", "value": 150.0, "at": 120_000, "transition_id": transition_id("high", "s", 0, "firing"),
    }  # fmt: skip
    assert attributes == {"severity": "critical", "company": "acme", "state": "firing"}


@settings(max_examples=25, deadline=None)
@given(split=st.integers(min_value=0, max_value=1000), lag=st.integers(min_value=0, max_value=200))
def test_any_crash_point_and_checkpoint_lag_give_the_same_notifications(split: int, lag: int) -> None:
    readings = stream()
    whole = AlarmEngine(ALL_RULES)
    expected = whole.apply(readings)
    before = AlarmEngine(ALL_RULES)
    published = before.apply(readings[:split])
    after = AlarmEngine(ALL_RULES)
    after.load(before.states(), before.watermark)
    replayed = after.apply(readings[max(0, split - lag) :])
    assert published + replayed == expected
    assert after.states() == whole.states()


def test_a_rebuild_generation_starts_instances_over_with_growing_versions() -> None:
    readings = stream()
    wrong = [msgspec.structs.replace(r, value=r.value + 500) for r in readings]  # say, a scale fixed since
    before = AlarmEngine(ALL_RULES)
    before.apply(wrong)
    stale = before.take_changes()
    reference = AlarmEngine(ALL_RULES)
    expected = reference.apply(readings)

    skipping = AlarmEngine(ALL_RULES)  # the same replay without a rebuild skips what the states cover
    skipping.load(
        [msgspec.msgpack.decode(msgspec.msgpack.encode(s), type=InstanceState) for s in stale.upserts],
        stale.watermark,
    )
    assert skipping.apply(readings) == []

    rebuilt = AlarmEngine(ALL_RULES)
    rebuilt.generation = 1
    # (the sink drops a shard clock of an older generation, so no watermark comes with the states)
    rebuilt.load(
        [msgspec.msgpack.decode(msgspec.msgpack.encode(s), type=InstanceState) for s in stale.upserts]
    )
    assert rebuilt.watermark is None  # the states' time predates the rebuild: it restarts with the replay
    assert rebuilt.apply(readings) == expected
    old = {(s.rule, s.series): s.version for s in stale.upserts}
    got = {(s.rule, s.series): s for s in rebuilt.take_changes().upserts}
    want = {(s.rule, s.series): s for s in reference.take_changes().upserts}
    assert got.keys() == want.keys()
    for key, s in got.items():
        assert s.generation == 1 and s.version == old.get(key, 0) + want[key].version  # versions only grow
        assert msgspec.structs.replace(s, version=0, generation=0) == msgspec.structs.replace(
            want[key], version=0
        )

    again = AlarmEngine(
        ALL_RULES
    )  # a restart in the middle of the rebuild replay keeps its generation's states
    again.generation = 1
    again.load(list(got.values()))
    assert again.apply(readings) == []


def test_every_rule_type_compiles_to_its_own_evaluator_and_the_base_is_abstract() -> None:
    from typing import get_args

    from wenu_stream.alarms.engine import Compiled, compile_rule
    from wenu_stream.alarms.rules import AlarmRule as AnyRule

    rules = {type(r): r for r in ALL_RULES}
    assert set(rules) == set(get_args(AnyRule))  # ALL_RULES covers every rule type
    evaluators = {type(compile_rule(r)) for r in rules.values()}
    assert len(evaluators) == len(rules) and all(
        issubclass(e, Compiled) and e is not Compiled for e in evaluators
    )
    with pytest.raises(TypeError):
        Compiled(HIGH)  # type: ignore[abstract]
