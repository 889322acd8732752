"""Processing-application benchmarks. Stats part: DynamoDB writes per 1,000 readings and engine CPU per reading.

Writes are counted on the in-memory store (the sink issues exactly these calls against DynamoDB: one
conditional PutItem per state item or window item, one BatchGetItem per 100 keys read). Write capacity
units come from item sizes by DynamoDB's rules (``bench/ddb_meter.py``: one per started KiB, standard writes).
Steady state: 500 meters (half gauges, half counters) for 150 minutes of reading time, the first 90 not
counted, so every counter carries a full hour of lateness buffer. The minimum beside it: one write per series
per flush that touched it, plus each window that closed written once.
Usage: .venv/bin/python bench/processing.py
"""

from __future__ import annotations

import asyncio
import base64
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ddb_meter import item_size, units

from wenu_stream.model import Position, SeriesReading
from wenu_stream.stats.engine import SeriesEngine, new_state
from wenu_stream.stats.sink import StatsSink
from wenu_stream.testing import InMemoryStatsStore

T0 = 1_792_800_000_000  # 2026-10-25, a DST day in Madrid
SHARD = "shardId-000000000000"


class CountingStore(InMemoryStatsStore):
    """The in-memory store, counting the DynamoDB calls and write units the sink's requests would cost."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    async def get_states(self, series: Sequence[str]) -> dict[str, Any]:
        self.calls["BatchGetItem"] += math.ceil(len(series) / 100)
        return await super().get_states(series)

    async def get_windows(self, keys: Sequence[tuple[str, str, int]]) -> list[Any]:
        self.calls["BatchGetItem"] += math.ceil(len(keys) / 100)
        return await super().get_windows(keys)

    async def put_state(self, item: dict[str, Any], base: str | None) -> str | None:
        self._count("state", item)
        return await super().put_state(item, base)

    async def put_window(self, item: dict[str, Any]) -> bool:
        self._count("window", item)
        return await super().put_window(item)

    def _count(self, kind: str, item: dict[str, Any]) -> None:
        wire = {
            k: {t: (base64.b64encode(v).decode() if t == "B" else v) for t, v in a.items()}
            for k, a in item.items()
        }
        self.calls["PutItem"] += 1
        self.calls[f"PutItem {kind}"] += 1
        self.calls["WCU"] += units(item_size(wire))


def fleet(devices: int, minutes: int, seed: int = 1) -> list[SeriesReading]:
    """``devices`` meters (half gauges, half counters, one series each) reporting once a minute, in time order."""
    rng = random.Random(seed)
    offsets = [rng.randrange(60_000) for _ in range(devices)]
    registers = [1000.0] * devices
    out = []
    for minute in range(minutes):
        for d in range(devices):
            kind = "counter" if d % 2 else "gauge"
            registers[d] += rng.randint(0, 500) / 1000
            value = round(registers[d], 3) if kind == "counter" else round(rng.uniform(0, 100), 3)
            out.append(SeriesReading(
                series=f"site-{d // 10}.m{d}.{kind}", company="acme", site=f"site-{d // 10}", timezone="Europe/Madrid",
                kind=kind, unit="kWh", device=f"dev-{d}", ch="c1", seq=minute, index=0,
                t=T0 + minute * 60_000 + offsets[d], value=value, raw_value=value))  # fmt: skip
    out.sort(key=lambda r: r.t)
    return [r.__class__(**{**{f: getattr(r, f) for f in r.__struct_fields__}, "position": Position(i)})
            for i, r in enumerate(out)]  # fmt: skip


async def writes_per_thousand(readings: list[SeriesReading], flush_s: float, count: bool = True,
                              publish_s: float = 0.0, warm_ms: int = 0) -> Counter[str]:  # fmt: skip
    """Feed readings as they arrive (batches of one second) and flush every ``flush_s`` of reading time;
    count from ``warm_ms`` of reading time on."""
    store = CountingStore() if count else InMemoryStatsStore()
    warm_at = T0 + warm_ms
    now = [T0]
    sink = StatsSink(store, lateness_s=3600, ttl_months=13, clock=lambda: now[0], publish_s=publish_s)
    batch: list[SeriesReading] = []
    next_batch, next_flush = T0 + 1000, T0 + flush_s * 1000
    for r in readings:
        now[0] = r.t  # the clock runs with the readings
        if warm_at and r.t >= warm_at and isinstance(store, CountingStore):
            store.calls.clear()
            warm_at = 0
        if r.t >= next_batch:
            await sink.write_readings(SHARD, batch)
            batch, next_batch = [], next_batch + 1000
        if r.t >= next_flush:
            await sink.flush()
            next_flush += flush_s * 1000
        batch.append(r)
    await sink.write_readings(SHARD, batch)
    await sink.flush()
    return store.calls if isinstance(store, CountingStore) else Counter()


def engine_cpu(kind: str, shuffle: bool, n: int = 60_000) -> float:
    """Microseconds of CPU per reading for the pure engine alone (one series, one reading every second)."""
    rng = random.Random(3)
    readings = [SeriesReading(series="s", company="c", site="x", timezone="Europe/Madrid", kind=kind, unit="u",
                              device="d", ch="c", seq=i, index=0, t=T0 + i * 1000, value=float(i), raw_value=float(i),
                              position=Position(i)) for i in range(n)]  # fmt: skip
    if shuffle:  # arrival jitter of up to 10 minutes, within the lateness
        readings.sort(key=lambda r: r.t + rng.randrange(600_000))
        readings = [r.__class__(**{**{f: getattr(r, f) for f in r.__struct_fields__}, "position": Position(i)})
                    for i, r in enumerate(readings)]  # fmt: skip
    engine = SeriesEngine(new_state(readings[0]), 3_600_000)
    started = time.process_time()
    for r in readings:
        engine.provide(dict.fromkeys(engine.needs(SHARD, [r])))
        engine.apply(SHARD, r)
    return (time.process_time() - started) / n * 1e6


async def sink_cpu(readings: list[SeriesReading]) -> float:
    """Microseconds of CPU per reading for the sink on the in-memory store (engine, items, flushes every 5 s)."""
    started = time.process_time()
    await writes_per_thousand(readings, 5.0, count=False)
    return (time.process_time() - started) / len(readings) * 1e6


def minimum(readings: list[SeriesReading], flush_s: float, warm_ms: int) -> float:
    """Writes per 1,000 counted readings: one per series per flush that touched it, each closed window once."""
    from wenu_stream.timewindows import window_of, windows_of

    counted = [r for r in readings if r.t >= T0 + warm_ms]
    touched = {(int((r.t - T0) // (flush_s * 1000)), r.series) for r in counted}
    end = counted[-1].t
    closed = {(r.series, key) for r in counted for key in windows_of(r.t, r.timezone)
              if window_of(key[1], key[0], r.timezone)[1] <= end}  # fmt: skip
    return (len(touched) + len(closed)) / len(counted) * 1000


def main() -> None:
    minutes, warm = 150, 90
    readings = fleet(500, minutes)
    counted = sum(r.t >= T0 + warm * 60_000 for r in readings)
    print(f"stats: 500 meters reporting every minute, {minutes} minutes, the last {minutes - warm} counted "
          f"({counted:,} readings), lateness 1 h")  # fmt: skip
    print(f"{'flush':>6} {'publish':>8} {'PutItem/1k':>11} {'(state':>7} {'window)':>8} {'BatchGet/1k':>12} "
          f"{'WCU/1k':>7} {'minimum/1k':>11}")  # fmt: skip
    for flush_s, publish_s in ((5.0, 0.0), (5.0, 900.0), (5.0, 3600.0), (5.0, 86_400.0), (60.0, 86_400.0)):
        calls = asyncio.run(
            writes_per_thousand(readings, flush_s, publish_s=publish_s, warm_ms=warm * 60_000)
        )
        k = counted / 1000
        print(
            f"{flush_s:>5.0f}s {publish_s:>7.0f}s {calls['PutItem'] / k:>11.0f} {calls['PutItem state'] / k:>7.0f} "
            f"{calls['PutItem window'] / k:>8.0f} {calls['BatchGetItem'] / k:>12.1f} {calls['WCU'] / k:>7.0f} "
            f"{minimum(readings, flush_s, warm * 60_000):>11.0f}"
        )
    print("(publish 86400 s is the default: stats.publish_s)")
    for kind in ("gauge", "counter"):
        for shuffle in (False, True):
            label = f"{kind}, {'shuffled within 10 min' if shuffle else 'in order'}"
            print(f"engine CPU per reading ({label}): {engine_cpu(kind, shuffle):.1f} us")
    print(
        f"sink CPU per reading (engine + items, in-memory store, flush 5 s): {asyncio.run(sink_cpu(readings)):.1f} us"
    )


if __name__ == "__main__":
    main()
