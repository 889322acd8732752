"""Stats scenarios shared by the unit tests of the stats sink and its DynamoDB integration test.

Readings over series that cross a DST change of their zone, delivered per shard in order or shuffled
with re-deliveries, fed in batches with periodic flushes, and runs that crash mid-flush and replay.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from wenu_stream.model import Position, SeriesReading
from wenu_stream.ports import StatsStore
from wenu_stream.stats.items import Item, decode_state
from wenu_stream.stats.sink import StatsSink

LATENESS_S = 3600
NOW_MS = int(dt.datetime(2026, 11, 28, tzinfo=dt.UTC).timestamp() * 1000)
SERIES = [  # (series, kind, zone, first reading): each crosses a DST change of its zone
    ("scl-1.main.power", "gauge", "America/Santiago", dt.datetime(2026, 9, 4, 20, tzinfo=dt.UTC)),
    ("scl-1.main.energy", "counter", "America/Santiago", dt.datetime(2026, 9, 4, 20, tzinfo=dt.UTC)),
    ("mad-1.hall.temp", "gauge", "Europe/Madrid", dt.datetime(2026, 10, 23, 12, tzinfo=dt.UTC)),
    ("mad-1.hall.energy", "counter", "Europe/Madrid", dt.datetime(2026, 10, 23, 12, tzinfo=dt.UTC)),
]
SHARDS = ("shardId-000000000000", "shardId-000000000001")
Delivery = tuple[str, SeriesReading]  # (shard, reading with its position)


def clock() -> int:
    return NOW_MS


def scenario(total: int, step_s: int = 30, seed: int = 7,
             series_list: Sequence[tuple[str, str, str, dt.datetime]] = SERIES) -> list[SeriesReading]:  # fmt: skip
    """``total`` readings over the series, one every ``step_s`` per series; the first counter restarts once."""
    rng = random.Random(seed)
    out: list[SeriesReading] = []
    per_series = total // len(series_list)
    restarts = next((n for n, s in enumerate(series_list) if s[1] == "counter"), -1)
    for n, (series, kind, tz, start) in enumerate(series_list):
        t0, register = int(start.timestamp() * 1000), 5_000.0
        for i in range(per_series):
            if kind == "counter":
                register = (
                    1.25
                    if i == per_series // 3 and n == restarts
                    else round(register + rng.randint(0, 900) / 1000, 3)
                )
                value = register
            else:
                value = round(rng.uniform(-40.0, 60.0), 3)
            out.append(SeriesReading(
                series=series, company="acme", site=series.split(".")[0], timezone=tz, kind=kind, unit="u",
                device=f"dev-{n}", ch="c1", seq=i, index=0, t=t0 + i * step_s * 1000 + rng.randrange(step_s * 1000),
                value=value, raw_value=value))  # fmt: skip
    return out


def shard_of(r: SeriesReading) -> str:
    return SHARDS[int(r.device.split("-")[1]) % len(SHARDS)]


def deliveries(readings: Sequence[SeriesReading], *, shuffle: bool = False, duplicates: float = 0.0,
               seed: int = 1) -> list[Delivery]:  # fmt: skip
    """Shard streams: arrival order (by time, or time plus a jitter under half the lateness), positions in
    arrival order, and a share of re-deliveries (same position) a little later; shards interleaved by time."""
    rng = random.Random(seed)
    jitter = LATENESS_S * 1000 // 2 if shuffle else 1
    arrival = sorted(readings, key=lambda r: (r.t + rng.randrange(jitter), r.series))
    streams: dict[str, list[Delivery]] = {s: [] for s in SHARDS}
    for r in arrival:
        shard = shard_of(r)
        stream = streams[shard]
        stream.append((shard, msgspec.structs.replace(r, position=Position(1000 + len(stream)))))
    for stream in streams.values():
        for i in range(len(stream) - 1, -1, -1):
            if rng.random() < duplicates:
                stream.insert(min(len(stream), i + rng.randint(1, 300)), stream[i])
    ranked = [(n, k, d) for k, s in enumerate(streams.values()) for n, d in enumerate(s)]
    return [d for _, _, d in sorted(ranked, key=lambda x: (x[0] // 200, x[1], x[0]))]  # shards take turns


def batches(stream: Sequence[Delivery], size: int) -> Iterator[tuple[str, list[SeriesReading]]]:
    """Consecutive deliveries of one shard, at most ``size`` at a time (as a shard processor hands them over)."""
    i = 0
    while i < len(stream):
        shard, batch = stream[i][0], []
        while i < len(stream) and stream[i][0] == shard and len(batch) < size:
            batch.append(stream[i][1])
            i += 1
        yield shard, batch


async def run(
    sink: StatsSink, stream: Sequence[Delivery], *, batch: int = 250, flush_every: int = 5000
) -> dict[str, int]:
    """Feed every batch, flushing every ``flush_every`` deliveries and at the end; return the report totals."""
    totals = {"applied": 0, "late": 0, "replayed": 0, "invalid": 0}
    since = 0
    for shard, readings in batches(stream, batch):
        report = await sink.write_readings(shard, readings)
        for name in totals:
            totals[name] += getattr(report, name)
        since += len(readings)
        if since >= flush_every:
            await sink.flush()
            since = 0
    await sink.flush()
    return totals


def comparable(table: Sequence[Item]) -> dict[tuple[str, str], Any]:
    """Items keyed by (pk, sk), without what depends on positions and commit timing (fences, redo)."""
    out: dict[tuple[str, str], Any] = {}
    for item in table:
        key = (item["pk"]["S"], item["sk"]["N"])
        kept = {k: v for k, v in item.items() if k not in ("fence", "redo", "state")}
        if key[0].endswith("#state"):
            state = decode_state(item)[0]
            kept["state"] = msgspec.to_builtins(msgspec.structs.replace(state, fence=None))
        out[key] = kept
    return out


def new_sink(store: StatsStore, **kw: Any) -> StatsSink:
    return StatsSink(store, lateness_s=LATENESS_S, ttl_months=13, clock=clock, **kw)


class CrashingStore:
    """Wraps a store and fails the n-th window put: a worker dying in the middle of a flush."""

    def __init__(self, inner: StatsStore, fail_at: int) -> None:
        self.inner, self.left = inner, fail_at

    async def get_states(self, series: Sequence[str]) -> dict[str, Item]:
        return await self.inner.get_states(series)

    async def get_windows(self, keys: Sequence[tuple[str, str, int]]) -> list[Item]:
        return await self.inner.get_windows(keys)

    async def put_state(self, item: Item, base: str | None) -> str | None:
        return await self.inner.put_state(item, base)

    async def put_window(self, item: Item) -> bool:
        self.left -= 1
        if self.left == 0:
            raise ConnectionError("worker killed mid-flush")
        return await self.inner.put_window(item)


async def run_with_crashes(make_store: Any, stream: Sequence[Delivery], crash_points: Sequence[tuple[int, int]],
                           **kw: Any) -> int:  # fmt: skip
    """Run ``stream``, crashing at each ``(delivery index, window puts until death)``: the sink is dropped after
    a failed flush and a new one replays from the last completed flush (the checkpoint) minus some.
    Returns how many crashes happened."""
    checkpoint = crashes = 0
    for crash_at, fail_after in crash_points:
        sink = new_sink(CrashingStore(make_store(), fail_after))
        position = checkpoint
        try:
            for shard, readings in batches(stream[position:crash_at], 250):
                await sink.write_readings(shard, readings)
            await sink.flush()
        except ConnectionError:
            crashes += 1  # died: the checkpoint stays where it was
        else:
            checkpoint = crash_at
        checkpoint = max(0, checkpoint - 700)  # and the replay starts a bit before it (records replay)
    await run(new_sink(make_store()), stream[checkpoint:], **kw)
    return crashes
