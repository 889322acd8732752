"""A child shard takes over its ended parents' alarm instances, clocks and pending notifications (``inherit``)."""

from __future__ import annotations

import msgspec
import pytest

from wenu_stream.alarms.rules import Match, NoDataRule, ThresholdRule
from wenu_stream.alarms.sink import AlarmsSink
from wenu_stream.model import HashRange, SeriesReading, hash_key
from wenu_stream.testing import InMemoryAlarmStateStore, InMemoryNotifier, SettableClock

PARENT, OTHER, LOW, HIGH_CHILD, MERGED = (f"shardId-00000000000{i}" for i in range(5))
HIGH = ThresholdRule(
    id="high", severity="critical", match=Match(company="acme"), op=">", value=100, clear=90, for_s=0
)
SILENT = NoDataRule(id="silent", severity="warning", match=Match(company="acme"), after_s=60)
MID = 2**127
LOWER, UPPER = HashRange(0, MID - 1), HashRange(MID, 2**128 - 1)


def key_in(half: HashRange) -> str:
    """A partition key whose hash falls in ``half``."""
    return next(k for k in (f"d{i}" for i in range(100)) if half.start <= hash_key(k) <= half.end)


def reading(series: str, t_ms: int, value: float) -> SeriesReading:
    device = key_in(LOWER if series.startswith("low") else UPPER)
    return SeriesReading(
        series=series, company="acme", site="hq", timezone="UTC", kind="gauge", unit="W", device=device,
        ch="c", seq=t_ms, index=0, t=t_ms, value=value, raw_value=value, partition_key=device,
    )  # fmt: skip


def sink(state: InMemoryAlarmStateStore, notifier: InMemoryNotifier) -> AlarmsSink:
    return AlarmsSink(state, notifier, rules=[HIGH, SILENT], wall_ms=SettableClock())


@pytest.fixture
async def ended() -> tuple[InMemoryAlarmStateStore, InMemoryNotifier]:
    """A parent that saw 'low' and 'up' fire, then ended (flushed); 'low' goes silent after 1 s."""
    state, notifier = InMemoryAlarmStateStore(), InMemoryNotifier()
    parent = sink(state, notifier)
    await parent.write_readings(PARENT, [reading("low", 1000, 150), reading("up", 1000, 150)])
    await parent.write_readings(PARENT, [reading("up", 20_000, 150)])
    await parent.flush()
    return state, notifier


async def test_split_children_take_the_instances_their_hash_range_holds(
    ended: tuple[InMemoryAlarmStateStore, InMemoryNotifier],
) -> None:
    state, notifier = ended
    low = sink(state, notifier)
    await low.inherit(LOW, [PARENT], LOWER)
    await low.write_readings(LOW, [])
    await low.flush()
    high = sink(state, notifier)
    await high.inherit(HIGH_CHILD, [PARENT], UPPER)
    await high.flush()
    owners = dict(state.owner)
    assert owners == {
        ("high", "low"): LOW,
        ("silent", "low"): LOW,
        ("high", "up"): HIGH_CHILD,
        ("silent", "up"): HIGH_CHILD,
    }
    assert state.clocks[LOW].watermark == state.clocks[HIGH_CHILD].watermark == 20_000


async def test_a_series_silent_since_before_the_split_fires_no_data_from_the_child(
    ended: tuple[InMemoryAlarmStateStore, InMemoryNotifier],
) -> None:
    state, notifier = ended
    child = sink(state, notifier)
    await child.inherit(LOW, [PARENT], LOWER)
    assert await child.write_readings(LOW, []) == []
    fired = await child.write_readings(LOW, [reading("low-other", 61_000, 10)])  # the shard's time moves on
    assert [(t.rule, t.series, t.to_state, t.at) for t in fired] == [("silent", "low", "firing", 61_000)]


async def test_a_merged_child_takes_every_instance_of_both_parents_and_the_newest_clock(
    ended: tuple[InMemoryAlarmStateStore, InMemoryNotifier],
) -> None:
    state, notifier = ended
    other = sink(state, notifier)
    await other.write_readings(OTHER, [reading("up-2", 5000, 10)])
    await other.flush()
    child = sink(state, notifier)
    await child.inherit(MERGED, [PARENT, OTHER], HashRange(0, 2**128 - 1))
    await child.flush()
    assert set(state.owner.values()) == {MERGED}
    assert state.clocks[MERGED].watermark == 20_000
    versions = {key: s.version for key, s in state.instances.items()}
    await child.inherit(MERGED, [PARENT, OTHER], HashRange(0, 2**128 - 1))  # a restart before a checkpoint
    await child.flush()
    assert {key: s.version for key, s in state.instances.items()} == versions


async def test_what_a_parent_recorded_and_never_published_is_published_by_its_child_once() -> None:
    state, notifier = InMemoryAlarmStateStore(), InMemoryNotifier()
    parent = sink(state, notifier)
    await parent.write_readings(PARENT, [reading("low", 1000, 150)])
    notifier.fail_next["publish"] = 1
    with pytest.raises(ConnectionError):
        await parent.flush()  # recorded, then the parent's last publication failed: it is left pending
    assert list(notifier.pending_shard.values()) == [PARENT]
    child = sink(state, notifier)
    await child.inherit(LOW, [PARENT], LOWER)
    await sink(state, notifier).inherit(HIGH_CHILD, [PARENT], UPPER)  # the sibling finds it published
    assert notifier.pending_shard == {}
    assert [msgspec.json.decode(e.body)["state"] for e in notifier.published] == ["firing"]
