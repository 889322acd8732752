"""The stats sink on the in-memory store: order, duplicates, crashes and stale caches give the same table.

The scenarios are in ``tests/support/stats.py`` (shared with ``tests/integration/test_stats_dynamodb.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from tests.support.stats import (
    LATENESS_S,
    NOW_MS,
    SERIES,
    SHARDS,
    Delivery,
    batches,
    comparable,
    deliveries,
    new_sink,
    run,
    run_with_crashes,
    scenario,
)
from wenu_stream.errors import SinkRejected
from wenu_stream.model import Position, SeriesReading
from wenu_stream.ports import StatsStore
from wenu_stream.stats.items import Item
from wenu_stream.stats.sink import StatsSink
from wenu_stream.testing import InMemoryStatsStore


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


@pytest.mark.parametrize("value", [1e26, -3e40, 1e-125])
async def test_a_value_a_window_item_cannot_hold_is_refused_before_any_change(
    readings: list[SeriesReading], value: float
) -> None:
    stream = deliveries(readings)
    expected, _ = await in_memory(stream)
    store = InMemoryStatsStore()
    sink = new_sink(store)
    await run(sink, stream)
    shard, r = stream[-1]
    poison = msgspec.structs.replace(r, value=value, seq=10**6, position=Position(10**7))
    with pytest.raises(SinkRejected, match="stats window"):
        await sink.write_readings(shard, [poison])
    await sink.flush()
    assert comparable(list(store.items.values())) == expected


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


async def test_a_clean_stop_writes_the_windows_a_crashed_owner_left_in_the_redo() -> None:
    """With publish_s, open windows wait in their state's redo; a worker that dies never settles them. The next
    owner's clean stop writes them all, also for a series it never read (its state is marked unpublished_shard),
    so the table equals that of a worker that ran uncrashed and stopped cleanly."""
    readings = scenario(1_200, step_s=60, series_list=SERIES[:2])  # two series of one device: one shard
    stream = deliveries(readings)
    cut = readings[len(readings) // 2].t
    silent = SERIES[0][0]  # the gauge: no reading of it after the cut
    before = [d for d in stream if d[1].t < cut]
    after = [d for d in stream if d[1].t >= cut and d[1].series != silent]
    shard = before[0][0]

    reference = InMemoryStatsStore()
    uncrashed = new_sink(reference, publish_s=86_400)
    await run(uncrashed, before + after)
    await uncrashed.settle(shard)

    store = InMemoryStatsStore()
    await run(new_sink(store, publish_s=86_400), before)  # committed, then the worker dies: no settle
    assert silent in await store.unpublished(shard)  # its open windows are in its state's redo only
    owner = new_sink(store, publish_s=86_400)
    await run(owner, after)  # never reads the silent series
    assert comparable(list(store.items.values())) != comparable(list(reference.items.values()))
    await owner.settle(shard)
    assert comparable(list(store.items.values())) == comparable(list(reference.items.values()))
    assert await store.unpublished(shard) == []


async def test_a_clean_stop_after_another_shard_moved_a_deferred_series_on_reloads_it_instead_of_failing() -> (
    None
):
    """Two shards carrying one series (a misrouted KPL aggregate): the first one's stop finds another fence stored
    for a series whose open windows it deferred, with nothing of its own left to apply again: it reloads it."""
    readings = scenario(40, step_s=60, series_list=SERIES[:1])
    store = InMemoryStatsStore()
    first, second = new_sink(store, publish_s=86_400), new_sink(store, publish_s=86_400)
    await run(first, [(SHARDS[0], r) for r in readings[:20]])
    await run(second, [(SHARDS[1], r) for r in readings[20:]])
    await first.settle(SHARDS[0])  # ValueError before: a reload with no readings to apply again
    await second.settle(SHARDS[1])
    assert await store.unpublished(SHARDS[1]) == []
