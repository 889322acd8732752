"""The alarms use case on the in-memory fakes: the flush order, a crash between any two steps, recovery, a stale state.

The flush makes a shard durable in this order: record the transitions in the
ledger, store the instance states, store the shard clock, then per notification
publish and mark it published. A crash anywhere means no checkpoint, so the
next owner replays the batch: the end state must be the one of a run without a
crash, and every notification must go out once (but for the one window the
notifier documents: a crash after the topic took a message and before the
ledger says so sends that one message again).
"""

from __future__ import annotations

from collections import Counter

import msgspec
import pytest

from wenu_stream.alarms.rules import Match, ThresholdRule
from wenu_stream.alarms.sink import AlarmsSink
from wenu_stream.errors import StaleAlarmState
from wenu_stream.model import SeriesReading
from wenu_stream.testing import InMemoryAlarmStateStore, InMemoryNotifier, SettableClock

SHARD = "shardId-000000000001"
HIGH = ThresholdRule(
    id="high", severity="critical", match=Match(company="acme"), op=">", value=100, clear=90, for_s=0
)


def reading(t_ms: int, value: float, series: str = "s") -> SeriesReading:
    return SeriesReading(
        series=series, company="acme", site="hq", timezone="UTC", kind="gauge", unit="W",
        device="d-" + series, ch="c", seq=t_ms, index=0, t=t_ms, value=value, raw_value=value,
    )  # fmt: skip


# s fires at 1 s and clears at 3 s; s2 fires at 1 s: three notifications.
BATCH = [reading(0, 50), reading(1000, 150), reading(2000, 150), reading(3000, 80), reading(1000, 150, "s2")]
STEPS = ["record", "save", "save_clock", "publish", "mark"]


def fakes() -> tuple[InMemoryAlarmStateStore, InMemoryNotifier, list[str]]:
    journal: list[str] = []
    return InMemoryAlarmStateStore(journal), InMemoryNotifier(journal), journal


def make_sink(state: InMemoryAlarmStateStore, notifier: InMemoryNotifier) -> AlarmsSink:
    return AlarmsSink(state, notifier, rules=[HIGH], wall_ms=SettableClock())


async def run(state: InMemoryAlarmStateStore, notifier: InMemoryNotifier) -> AlarmsSink:
    sink = make_sink(state, notifier)
    await sink.write_readings(SHARD, BATCH)
    await sink.flush()
    return sink


@pytest.fixture
async def clean() -> tuple[InMemoryAlarmStateStore, InMemoryNotifier]:
    state, notifier, _ = fakes()
    await run(state, notifier)
    return state, notifier


async def test_a_flush_records_then_stores_states_and_clock_then_publishes_and_marks(
    clean: tuple[InMemoryAlarmStateStore, InMemoryNotifier],
) -> None:
    state, notifier, journal = fakes()
    sink = make_sink(state, notifier)
    await sink.write_readings(SHARD, BATCH)
    assert journal == [
        "load_shard",
        "recover",
        "load_instances",
    ]  # a shard loads once, before its first reading
    journal.clear()
    await sink.flush()
    assert journal == ["record", "save", "save_clock"] + ["publish", "mark"] * 3
    assert sorted(notifier.published_ids()) == sorted(clean[1].published_ids())
    assert len(set(notifier.published_ids())) == 3
    assert {e.status for e in notifier.ledger.values()} == {"published"}
    assert notifier.pending_shard == {}
    assert not sink.has_pending


@pytest.mark.parametrize("step", STEPS)
async def test_a_crash_before_any_step_ends_like_a_run_without_one(
    step: str, clean: tuple[InMemoryAlarmStateStore, InMemoryNotifier]
) -> None:
    state, notifier, _ = fakes()
    (state if step in ("save", "save_clock") else notifier).fail_next[step] = 1
    with pytest.raises(ConnectionError):
        await run(state, notifier)  # the process dies: no checkpoint
    await run(state, notifier)  # the next owner replays the batch from the checkpoint
    assert_same_end(state, notifier, clean, resent_at_most_one=step == "mark")


@pytest.mark.parametrize("step", STEPS)
async def test_a_retried_flush_carries_on_where_the_failed_one_stopped(
    step: str, clean: tuple[InMemoryAlarmStateStore, InMemoryNotifier]
) -> None:
    state, notifier, _ = fakes()
    (state if step in ("save", "save_clock") else notifier).fail_next[step] = 1
    sink = make_sink(state, notifier)
    await sink.write_readings(SHARD, BATCH)
    with pytest.raises(ConnectionError):
        await sink.flush()
    assert sink.has_pending  # nothing is forgotten: the processor retries the flush
    await sink.flush()
    assert_same_end(state, notifier, clean, resent_at_most_one=step == "mark")


def assert_same_end(
    state: InMemoryAlarmStateStore,
    notifier: InMemoryNotifier,
    clean: tuple[InMemoryAlarmStateStore, InMemoryNotifier],
    *,
    resent_at_most_one: bool,
) -> None:
    clean_state, clean_notifier = clean
    assert state.instances == clean_state.instances
    assert state.clocks == clean_state.clocks
    assert state.last == clean_state.last
    assert {k: e.status for k, e in notifier.ledger.items()} == dict.fromkeys(
        clean_notifier.ledger, "published"
    )
    sent = Counter(notifier.published_ids())
    assert set(sent) == set(clean_notifier.published_ids())
    repeats = sum(sent.values()) - len(sent)
    assert repeats == (1 if resent_at_most_one else 0)


async def test_a_new_owner_publishes_what_the_last_one_left_pending_once_it_read_the_shard() -> None:
    state, notifier, journal = fakes()
    notifier.fail_next["publish"] = 1
    with pytest.raises(ConnectionError):
        await run(state, notifier)  # recorded (and states stored), never published
    assert len(notifier.pending_shard) == 3 and notifier.published == []
    journal.clear()
    sink = make_sink(state, notifier)
    await sink.write_readings(SHARD, [])  # the shard loads on its first (even empty) batch
    assert journal == ["load_shard", "recover"] + ["publish", "mark"] * 3  # states first: see alarms.sink
    assert len(set(notifier.published_ids())) == 3 and notifier.pending_shard == {}
    assert [e.at for e in notifier.published] == sorted(e.at for e in notifier.published)


async def test_what_another_process_holds_a_claim_on_waits_and_goes_out_once_the_claim_is_gone() -> None:
    """A worker killed between claiming a notification and marking it: the next owner waits for its claim
    (``waiting``: the shard is not settled, an idle exit waits), then publishes it."""
    state, notifier, _ = fakes()
    notifier.fail_next["publish"] = 1
    with pytest.raises(ConnectionError):
        await run(state, notifier)  # recorded, never published
    notifier.claimed_elsewhere = {e.transition_id for e in notifier.ledger.values()}
    clock = SettableClock()
    sink = AlarmsSink(state, notifier, rules=[HIGH], wall_ms=clock)
    await sink.write_readings(SHARD, [])
    assert sink.waiting and not sink.has_pending and notifier.published == []
    notifier.claimed_elsewhere.clear()  # its claim expired
    assert not sink.has_pending  # offered again after a pause, not on every poll
    clock.now += 2.0
    assert sink.has_pending
    await sink.flush()
    assert not sink.waiting and len(set(notifier.published_ids())) == len(notifier.published) == 3


async def test_a_stale_state_stops_the_flush_before_publishing_and_releases_the_shard(
    clean: tuple[InMemoryAlarmStateStore, InMemoryNotifier],
) -> None:
    state, notifier, journal = fakes()
    sink = make_sink(state, notifier)
    await sink.write_readings(SHARD, BATCH)
    # Meanwhile another worker took the shard over and moved instance (high, s) far ahead.
    newer = msgspec.structs.replace(clean[0].instances[("high", "s")], version=99)
    state.instances[("high", "s")], state.owner[("high", "s")] = newer, SHARD
    with pytest.raises(StaleAlarmState):
        await sink.flush()
    assert notifier.published == []  # the states come before publishing: a stale worker sends nothing
    assert state.instances[("high", "s")] == newer
    journal.clear()
    await sink.write_readings(SHARD, [reading(4000, 150)])
    assert "load_shard" in journal  # released: the shard's engine is loaded again from the store
    journal.clear()
    await sink.flush()
    assert "save" in journal
    assert state.instances[("high", "s")].version == 100  # evaluated on from the newer state
