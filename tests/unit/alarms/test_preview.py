"""Rule preview: stats windows become readings in time order, and the live engine runs over them."""

from __future__ import annotations

from wenu_stream.alarms.preview import SeriesFacts, preview, readings_of
from wenu_stream.alarms.rules import parse_rules

GAUGE = SeriesFacts(series="s", company="c", site="x", timezone="UTC", kind="gauge", unit="W")


def window(
    start: str, first: float, lo: float, hi: float, last: float, *, first_at: str, last_at: str
) -> dict:
    return {
        "series": "s",
        "window": "15m",
        "start": start,
        "first": first,
        "min": lo,
        "max": hi,
        "last": last,
        "first_at": first_at,
        "last_at": last_at,
    }


ROSE = window(
    "2026-01-01T00:00:00+00:00",
    10,
    5,
    90,
    50,
    first_at="2026-01-01T00:00:00+00:00",
    last_at="2026-01-01T00:12:00+00:00",
)
FELL = window(
    "2026-01-01T00:15:00+00:00",
    50,
    1,
    60,
    2,
    first_at="2026-01-01T00:15:00+00:00",
    last_at="2026-01-01T00:27:00+00:00",
)


def test_a_window_that_rose_puts_its_minimum_before_its_maximum_and_one_that_fell_the_reverse() -> None:
    values = [r.value for r in readings_of([ROSE, FELL], GAUGE)]
    assert values == [10, 5, 90, 50, 50, 60, 1, 2]
    times = [r.t for r in readings_of([ROSE, FELL], GAUGE)]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_a_counter_window_is_its_first_and_last_register() -> None:
    counter = SeriesFacts(series="s", company="c", site="x", timezone="UTC", kind="counter", unit="kWh")
    assert [r.value for r in readings_of([ROSE], counter)] == [10, 50]


def test_the_live_engine_finds_the_threshold_crossing_of_the_maximum() -> None:
    rule = parse_rules(
        [
            {
                "id": "hot",
                "type": "threshold",
                "series": "s",
                "op": ">",
                "value": 80,
                "clear": 40,
                "severity": "major",
            }
        ]
    )[0]
    got = preview(rule, GAUGE, [ROSE, FELL], end_ms=2_000_000_000_000)
    assert [(t.to_state, t.value) for t in got.transitions] == [("firing", 90.0), ("ok", 1.0)]
    assert (got.windows, got.readings, got.exact) == (2, 8, True)


def test_no_data_fires_for_a_silence_longer_than_after_s_at_the_end_of_the_range() -> None:
    rule = parse_rules(
        [{"id": "quiet", "type": "no_data", "series": "s", "after_s": 600, "severity": "minor"}]
    )[0]
    end = readings_of([FELL], GAUGE)[-1].t + 3_600_000
    got = preview(rule, GAUGE, [ROSE, FELL], end_ms=end)
    assert [t.to_state for t in got.transitions] == ["firing"]
