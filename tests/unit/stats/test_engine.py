"""The stats engine against an independent, from-scratch computation, and its lateness/replay rules."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import defaultdict
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from wenu_stream.model import Position, SeriesReading
from wenu_stream.stats.aggregates import result
from wenu_stream.stats.engine import Outcome, SeriesEngine, new_state

HOUR = 3_600_000
SHARD = "shardId-000000000001"


def reading(series: str, kind: str, tz: str, t: int, value: float, seq: int, pos: int) -> SeriesReading:
    return SeriesReading(
        series=series,
        company="acme",
        site="hq",
        timezone=tz,
        kind=kind,
        unit="u",
        device="d1",
        ch="c",
        seq=seq,
        index=0,
        t=t,
        value=value,
        raw_value=value,
        position=Position(pos),
    )


def feed(readings: list[SeriesReading], lateness_ms: int = HOUR) -> tuple[SeriesEngine, list[Outcome]]:
    engine = SeriesEngine(new_state(readings[0]), lateness_ms)
    outcomes = []
    for r in readings:
        engine.provide(dict.fromkeys(engine.needs(SHARD, [r])))
        outcomes.append(engine.apply(SHARD, r))
    return engine, outcomes


def engine_table(engine: SeriesEngine) -> dict[tuple[str, int], dict[str, Any]]:
    return {k: result(a, engine.state.kind) for k, a in engine.windows.items() if a.count}


# --- the reference: sort everything, find windows by walking the local calendar hour by hour ---------------


def ref_start(t: int, width: str, tz: str) -> int:
    if width in ("15m", "1h"):
        size = 900_000 if width == "15m" else HOUR
        return t // size * size
    zone = ZoneInfo(tz)

    def label(ms: int) -> tuple[int, ...]:
        d = dt.datetime.fromtimestamp(ms / 1000, zone)
        return (d.year, d.month, d.day) if width == "1d" else (d.year, d.month)

    target = label(t)
    if (target, tz) not in _STARTS:
        start = t // HOUR * HOUR  # every midnight of these zones falls on a UTC hour
        while label(start - HOUR) == target:
            start -= HOUR
        _STARTS[(target, tz)] = start
    return _STARTS[(target, tz)]


_STARTS: dict[tuple[tuple[int, ...], str], int] = {}


def reference(readings: list[SeriesReading]) -> dict[tuple[str, int], dict[str, Any]]:
    kind, tz = readings[0].kind, readings[0].timezone
    ordered = sorted(readings, key=lambda r: (r.t, r.seq, r.index))
    table: dict[tuple[str, int], dict[str, Any]] = {}
    groups: dict[tuple[str, int], list[tuple[SeriesReading, Decimal]]] = defaultdict(list)
    previous: Decimal | None = None
    for r in ordered:
        value = Decimal(str(r.value))
        gain = Decimal(0) if previous is None else (value - previous if value >= previous else value)
        previous = value
        for width in ("15m", "1h", "1d", "1mo"):
            groups[(width, ref_start(r.t, width, tz))].append((r, gain))
    for key, members in groups.items():
        values = [Decimal(str(r.value)) for r, _ in members]
        row: dict[str, Any] = {"count": len(members)}
        if kind == "counter":
            row.update(
                first=members[0][0].value,
                last=members[-1][0].value,
                consumption=sum((g for _, g in members), Decimal(0)),
            )
        else:
            total = sum(values, Decimal(0))
            row.update(
                sum=total,
                min=min(r.value for r, _ in members),
                max=max(r.value for r, _ in members),
                mean=total / len(members),
                first=members[0][0].value,
                last=members[-1][0].value,
            )
        table[key] = row
    return table


def scenario(kind: str, tz: str, start: dt.datetime, seed: int) -> list[SeriesReading]:
    """Three days of readings every 7 minutes around a DST change; the counter restarts once."""
    rng = random.Random(seed)
    t0 = int(start.timestamp() * 1000)
    out, register = [], 1000.0
    for i in range(3 * 24 * 60 // 7):
        if kind == "counter":
            register = round(register + rng.randint(0, 5000) / 1000, 3)
            if i == 300:
                register = 2.5  # the meter restarted from zero
            value = register
        else:
            value = round(rng.uniform(-50, 50), 3)
        out.append(
            reading(f"{kind}-{tz}", kind, tz, t0 + i * 7 * 60_000 + rng.randint(0, 59_999), value, i, i)
        )
    return out


def shuffled_within(readings: list[SeriesReading], lateness_ms: int, seed: int) -> list[SeriesReading]:
    """Arrival order = time plus a jitter under half the lateness, positions renumbered in arrival order."""
    rng = random.Random(seed)
    arrival = sorted(readings, key=lambda r: r.t + rng.randrange(lateness_ms // 2))
    return [_at(r, i) for i, r in enumerate(arrival)]


def _at(r: SeriesReading, pos: int) -> SeriesReading:
    return SeriesReading(**{**{f: getattr(r, f) for f in r.__struct_fields__}, "position": Position(pos)})


CASES = [
    (
        "counter",
        "America/Santiago",
        dt.datetime(2026, 9, 4, 18, tzinfo=dt.UTC),
    ),  # spring forward: day of 23 h
    ("gauge", "America/Santiago", dt.datetime(2026, 4, 3, 12, tzinfo=dt.UTC)),  # fall back: day of 25 h
    ("counter", "Europe/Madrid", dt.datetime(2026, 10, 23, 12, tzinfo=dt.UTC)),
    ("gauge", "Europe/Madrid", dt.datetime(2026, 3, 27, 12, tzinfo=dt.UTC)),
]


def test_engine_equals_the_reference_in_order_and_shuffled_across_dst() -> None:
    for n, (kind, tz, start) in enumerate(CASES):
        readings = scenario(kind, tz, start, seed=n)
        expected = reference(readings)
        in_order, outcomes = feed(readings)
        assert set(outcomes) == {Outcome.APPLIED}
        assert engine_table(in_order) == expected, (kind, tz)
        shuffled, outcomes = feed(shuffled_within(readings, HOUR, seed=n))
        assert set(outcomes) == {Outcome.APPLIED}
        assert engine_table(shuffled) == expected, (kind, tz, "shuffled")


def test_a_dst_day_has_23_or_25_hours_in_the_reference_windows() -> None:
    readings = scenario("counter", "America/Santiago", CASES[0][2], seed=0)
    days = sorted(start for width, start in reference(readings) if width == "1d")
    lengths = [(b - a) / HOUR for a, b in itertools.pairwise(days)]
    assert 23.0 in lengths  # 2026-09-06 starts at 01:00 -03


def test_counter_reset_adds_the_new_register_value() -> None:
    t = 1_800_000_000_000
    rs = [
        reading("c", "counter", "UTC", t + i * 60_000, v, i, i) for i, v in enumerate([10.0, 12.5, 3.0, 4.0])
    ]
    engine, _ = feed(rs)
    total = sum(engine_table(engine)[("1d", k)]["consumption"] for w, k in engine.windows if w == "1d")
    assert total == Decimal("2.5") + Decimal(3) + Decimal(1)  # the first reading adds nothing


def test_a_counter_reading_inserted_between_two_recomputes_its_successor() -> None:
    t = 1_800_000_000_000 - 1_800_000_000_000 % 900_000
    early = reading("c", "counter", "UTC", t + 14 * 60_000, 10.0, 1, 1)  # window [t, t+15m)
    late = reading("c", "counter", "UTC", t + 16 * 60_000, 30.0, 3, 2)  # window [t+15m, t+30m)
    middle = reading("c", "counter", "UTC", t + 15 * 60_000 + 1, 18.0, 2, 3)  # arrives last, lands between
    engine, _ = feed([early, late, middle])
    table = engine_table(engine)
    assert table[("15m", t)]["consumption"] == 0
    assert table[("15m", t + 900_000)]["consumption"] == Decimal(20)  # (18 - 10) + (30 - 18)
    assert table[("15m", t + 900_000)]["count"] == 2


def test_a_reading_older_than_the_lateness_is_late_and_changes_nothing() -> None:
    t = 1_800_000_000_000
    rs = [
        reading("g", "gauge", "UTC", t, 1.0, 1, 1),
        reading("g", "gauge", "UTC", t + 2 * HOUR, 2.0, 2, 2),
        reading("g", "gauge", "UTC", t + HOUR - 1, 5.0, 3, 3),
        reading("g", "gauge", "UTC", t + HOUR, 7.0, 4, 4),
    ]
    engine, outcomes = feed(rs)
    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED, Outcome.LATE, Outcome.APPLIED]
    assert sum(r["count"] for (w, _), r in engine_table(engine).items() if w == "1mo") == 3


def test_a_replayed_position_is_skipped() -> None:
    t = 1_800_000_000_000
    first = reading("g", "gauge", "UTC", t, 1.0, 1, 5)
    engine, outcomes = feed([first, reading("g", "gauge", "UTC", t + 1, 2.0, 2, 6), first])
    assert outcomes[-1] is Outcome.REPLAYED
    assert engine_table(engine)[("1h", t // HOUR * HOUR)]["count"] == 2


def test_the_counter_buffer_stays_small() -> None:
    t = 1_800_000_000_000
    rs = [reading("c", "counter", "UTC", t + i * 60_000, float(i), i, i) for i in range(600)]
    engine, _ = feed(rs)
    assert len(engine.state.buffer) == 62  # the last hour (61 readings at one a minute) and the one before
