"""The stats sink on the in-memory store: order, duplicates, crashes and stale caches give the same table.

The scenario helpers here are shared with ``tests/integration/test_stats_dynamodb.py``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
import pytest

from wenu_stream.model import Position, SeriesReading
from wenu_stream.ports import StatsStore
from wenu_stream.stats.items import Item, decode_state
from wenu_stream.stats.sink import StatsSink
from wenu_stream.testing import InMemoryStatsStore

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


class Crash(Exception):
    pass


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


@pytest.fixture(scope="module")
def readings() -> list[SeriesReading]:
    return scenario(8_000, step_s=120)


async def in_memory(
    stream: Sequence[Delivery], **kw: Any
) -> tuple[dict[tuple[str, str], Any], dict[str, int]]:
    store = InMemoryStatsStore()
    totals = await run(new_sink(store), stream, **kw)
    return comparable(list(store.items.values())), totals


async def test_shuffled_with_duplicates_gives_the_table_of_the_in_order_run(
    readings: list[SeriesReading],
) -> None:
    expected, totals = await in_memory(deliveries(readings))
    assert totals == {"applied": 8_000, "late": 0, "replayed": 0, "invalid": 0}
    got, totals = await in_memory(deliveries(readings, shuffle=True, duplicates=0.05, seed=3), batch=97)
    assert totals["applied"] == 8_000 and totals["late"] == 0 and totals["replayed"] > 300
    assert got == expected


async def test_crashes_mid_flush_and_replays_give_the_same_table(readings: list[SeriesReading]) -> None:
    expected, _ = await in_memory(deliveries(readings))
    store = InMemoryStatsStore()
    stream = deliveries(readings, shuffle=True, seed=5)
    crashes = await run_with_crashes(lambda: store, stream, [(3_000, 40), (5_500, 10**9), (6_000, 3)])
    assert crashes == 2
    assert comparable(list(store.items.values())) == expected


async def test_a_stale_cache_is_rebuilt_instead_of_overwriting_newer_stats(
    readings: list[SeriesReading],
) -> None:
    """Worker A keeps a series cached, the shard moves to B and back: A must not write over B's work."""
    stream = deliveries(readings)
    expected, _ = await in_memory(stream)
    store = InMemoryStatsStore()
    a = new_sink(store)
    await run(a, stream[:3_000])
    await run(new_sink(store), stream[3_000:5_000])  # worker B
    await run(a, stream[5_000:])  # A again, from B's checkpoint, with its old cache
    assert comparable(list(store.items.values())) == expected


async def test_late_readings_are_counted_and_change_nothing(readings: list[SeriesReading]) -> None:
    stream = deliveries(readings)
    expected, _ = await in_memory(stream)
    shard, r = stream[-1]
    old = msgspec.structs.replace(r, t=r.t - 2 * LATENESS_S * 1000, seq=10**6, position=Position(10**7))
    store = InMemoryStatsStore()
    sink = new_sink(store)
    await run(sink, stream)
    report = await sink.write_readings(shard, [old])
    await sink.flush()
    assert report.late == 1 and report.applied == 0
    got = comparable(list(store.items.values()))
    state_key = (f"{r.series}#state", "0")
    assert {k: v for k, v in got.items() if k != state_key} == {
        k: v for k, v in expected.items() if k != state_key
    }


class Ticking:
    """A settable clock (epoch ms) and a store that counts window puts."""

    def __init__(self) -> None:
        self.now = NOW_MS
        self.puts = 0
        self.store = InMemoryStatsStore()
        inner = self.store.put_window

        async def counted(item: Item) -> bool:
            self.puts += 1
            return await inner(item)

        self.store.put_window = counted  # type: ignore[method-assign]

    def __call__(self) -> int:
        return self.now

    async def feed(self, stream: Sequence[Delivery], publish_s: float) -> StatsSink:
        """One batch of 50 a minute, each followed by a flush."""
        sink = StatsSink(self.store, lateness_s=LATENESS_S, ttl_months=13, clock=self, publish_s=publish_s)
        for shard, batch in batches(stream, 50):
            await sink.write_readings(shard, batch)
            self.now += 60_000
            await sink.flush()
        return sink


def ttl_free(table: dict[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
    """A state item's TTL follows the wall clock; the rest must match."""
    return {k: {n: v for n, v in item.items() if n != "expires_at" or not k[0].endswith("#state")}
            for k, item in table.items()}  # fmt: skip


async def test_deferred_publication_writes_less_and_ends_in_the_same_table(
    readings: list[SeriesReading],
) -> None:
    stream = deliveries(readings, shuffle=True, seed=9)
    expected = ttl_free((await in_memory(deliveries(readings)))[0])
    eager = Ticking()
    await eager.feed(stream, publish_s=0)
    deferred = Ticking()
    sink = await deferred.feed(stream, publish_s=600)
    assert (
        ttl_free(comparable(list(deferred.store.items.values()))) != expected
    )  # open windows: in the redo only
    deferred.now += 600_000
    await sink.flush()
    assert ttl_free(comparable(list(deferred.store.items.values()))) == expected
    assert ttl_free(comparable(list(eager.store.items.values()))) == expected
    assert (
        deferred.puts < eager.puts
    )  # here each flush spans 24 min of readings; bench/processing.py: live rates


def rebuilt_sink(store: StatsStore, generation: int) -> StatsSink:
    sink = new_sink(store)
    for shard in SHARDS:
        sink.rebuild(shard, generation)
    return sink


async def test_a_rebuild_replay_recomputes_the_windows_and_survives_a_restart(
    readings: list[SeriesReading],
) -> None:
    good = deliveries(readings, shuffle=True, seed=5)
    wrong = [
        (shard, msgspec.structs.replace(r, value=r.value * 10)) for shard, r in good
    ]  # a scale fixed since
    reference, _ = await in_memory(good)
    store = InMemoryStatsStore()
    await run(new_sink(store), wrong)
    assert comparable(list(store.items.values())) != reference

    totals = await run(new_sink(store), good)  # a plain replay skips what the fences cover
    assert totals["applied"] == 0 and totals["replayed"] == len(good)
    assert comparable(list(store.items.values())) != reference

    half = len(good) // 2  # the rebuild replay: the first worker stops after half, the next resumes before it
    assert (await run(rebuilt_sink(store, 1), good[:half]))["applied"] == half
    totals = await run(rebuilt_sink(store, 1), good[half - 700 :])
    assert totals == {"applied": len(good) - half, "late": 0, "replayed": 700, "invalid": 0}
    assert comparable(list(store.items.values())) == reference
    fences = {i["fence"]["S"].split("/")[1][:1] for i in store.items.values()}
    assert fences == {"g"}  # every item was rewritten under generation 1

    again = await run(rebuilt_sink(store, 1), good)  # the same generation again: nothing applied twice
    assert again["applied"] == 0 and comparable(list(store.items.values())) == reference
    stale = await run(
        new_sink(store), wrong
    )  # a worker that missed the rebuild (generation 0) writes nothing
    assert stale["applied"] == 0 and comparable(list(store.items.values())) == reference


async def test_a_rebuild_from_the_middle_rebuilds_what_the_replay_covers(
    readings: list[SeriesReading],
) -> None:
    good = deliveries(readings)
    wrong = [(shard, msgspec.structs.replace(r, value=r.value * 10)) for shard, r in good]
    store = InMemoryStatsStore()
    await run(new_sink(store), wrong)
    cut = max(r.t for _, r in good) - 2 * 86_400_000  # the last two days
    tail = [(shard, r) for shard, r in good if r.t >= cut]
    assert (await run(rebuilt_sink(store, 1), tail))["applied"] == len(tail)
    reference, _ = await in_memory(tail)
    got = comparable(list(store.items.values()))
    windows = {
        k: v for k, v in reference.items() if k[0].endswith(("#15m", "#1h"))
    }  # windows inside the tail
    assert windows and all(got[k] == v for k, v in windows.items())
