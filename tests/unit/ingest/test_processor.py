"""The shard processor: every user record ends accepted, duplicate or dead-lettered; state follows checkpoints."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from tests.support.records import RING, aggregated, envelope, message, record
from wenu_stream.ingest.processor import LAST_SUB, PipelineProcessor
from wenu_stream.metrics import Metrics
from wenu_stream.model import Position, parse_checkpoint
from wenu_stream.testing import InMemoryBatchSink, InMemoryDeadLetterStore, InMemoryStateStore, SettableClock


def make(
    state: InMemoryStateStore | None = None, **kw: object
) -> tuple[PipelineProcessor, InMemoryDeadLetterStore, InMemoryStateStore, InMemoryBatchSink, SettableClock]:
    dlq, state, sink, clock = (
        InMemoryDeadLetterStore(),
        state or InMemoryStateStore(),
        InMemoryBatchSink(),
        SettableClock(0),
    )
    proc = PipelineProcessor(
        app="processing",
        keyring=RING,
        dead_letters=dlq,
        state=state,
        sinks=[sink],
        metrics=Metrics.create(CollectorRegistry()),
        checkpoint_interval=5.0,
        monotonic=clock.seconds,
        **kw,
    )  # type: ignore[arg-type]
    return proc, dlq, state, sink, clock


BATCH = [
    record(1, envelope(message("EM-1", 1))),
    record(2, b"\x02garbage"),
    record(3, envelope(message("EM-1", 1))),  # a duplicate of seq 1
    aggregated(4, [message("EM-2", 1), message("EM-2", 2)]),
]


async def test_every_user_record_ends_in_exactly_one_place() -> None:
    proc, dlq, state, sink, clock = make()
    await proc.initialize("shard-0", None, [])
    assert await proc.process(BATCH, 0) is False  # interval not reached: nothing durable in the sinks yet
    assert [(k[1], d.reason) for k, d in dlq.letters.items()] == [(2, "unsupported_version")]
    assert (
        proc.totals.accepted == 3
        and proc.totals.duplicates == 1
        and proc.totals.rejected == {"unsupported_version": 1}
    )
    assert sink.batches == [] and state.states == {}
    clock.now = 6.0
    assert await proc.process([record(5, envelope(message("EM-3", 9)))], None) is True
    assert ("shard-0", "5") in state.states
    assert sum(len(o.accepted) for _, o in sink.batches) == 4


async def test_replay_from_the_checkpoint_counts_nothing_twice() -> None:
    proc, _, state, _, clock = make()
    await proc.initialize("shard-0", None, [])
    clock.now = 10.0
    assert await proc.process(BATCH[:2], None) is True  # checkpoint at 2
    await proc.process(BATCH[2:], None)  # not committed: "crash" here
    again, _, _, _, clock2 = make(state)
    await again.initialize("shard-0", "2", [])
    clock2.now = 10.0
    assert await again.process(BATCH[2:], None) is True
    assert again.totals.accepted == 3 and again.totals.duplicates == 1 and again.totals.records == 4


async def test_sub_sequence_checkpoint_skips_done_user_records() -> None:
    proc, *_ = make()
    await proc.initialize(
        "shard-0", "4:1", []
    )  # KCL checkpointed inside an aggregate: sub-records 0 and 1 are done
    await proc.process([aggregated(4, [message("EM-2", 1), message("EM-2", 2), message("EM-2", 3)])], None)
    assert proc.totals.accepted == 1 and proc.totals.records == 1


async def test_a_failing_sink_blocks_the_checkpoint_and_poisons_the_processor() -> None:
    proc, _, state, sink, clock = make(write_attempts=1)
    await proc.initialize("shard-0", None, [])
    sink.fail_next = 1
    clock.now = 10.0
    with pytest.raises(ConnectionError):
        await proc.process(BATCH, None)
    assert state.states == {}
    with pytest.raises(RuntimeError):
        await proc.process(BATCH, None)


async def test_child_shard_inherits_parents_duplicate_memory() -> None:
    proc, _, state, _, _clock = make()
    await proc.initialize("parent", None, [])
    await proc.process(BATCH[:1], None)
    await proc.shard_ended()
    child, *_ = make(state)
    await child.initialize("child", None, ["parent"])
    await child.process([record(9, envelope(message("EM-1", 1)))], None)
    assert child.totals.duplicates == 1 and child.totals.accepted == 0


async def test_flush_commits_pending_and_returns_the_sequence() -> None:
    proc, _, state, _, _ = make()
    await proc.initialize("shard-0", None, [])
    await proc.process(BATCH[:1], None)
    assert await proc.flush() == "1"
    assert await proc.flush() is None
    assert ("shard-0", "1") in state.states


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, (None, 0)),
        ("TRIM_HORIZON", (None, 0)),
        ("12", ("12", 0)),
        ("12:3", ("12", 3)),
        ("SHARD_END", (None, 0)),
    ],
)
def test_parse_checkpoint(text: str | None, expected: tuple[str | None, int]) -> None:
    assert parse_checkpoint(text) == expected


async def test_an_urgent_sink_commits_before_the_interval() -> None:
    """An alarm notification waiting in a sink makes the processor commit at once (latency), others coalesce."""
    proc, _, state, sink, _clock = make()
    sink.has_pending = True  # type: ignore[attr-defined]
    await proc.initialize("shard-0", None, [])
    assert await proc.process(BATCH[:1], None) is True
    assert ("shard-0", "1") in state.states and sink.batches


async def test_a_rebuild_marker_at_the_checkpoint_recounts_and_every_sink_gets_the_generation() -> None:
    from wenu_stream.ingest.rebuild import RebuildMarker

    proc, _, state, _, clock = make()
    await proc.initialize("shard-0", None, [])
    clock.now = 10.0
    assert await proc.process(BATCH, None) is True  # checkpoint at 4, state saved there
    state.markers["shard-0"] = RebuildMarker(
        app="processing", stream="s", shard_id="shard-0", from_checkpoint="2", generation=3
    )
    rebuilt, _, _, sink, clock2 = make(state)
    await rebuilt.initialize("shard-0", "2", [])  # the reset moved the lease to 2: recount from there
    assert rebuilt.generation == 3 and sink.generations == {"shard-0": 3}
    assert rebuilt.totals.records == 0 and len(rebuilt._dedup) == 0
    clock2.now = 10.0
    assert await rebuilt.process(BATCH[2:], None) is True
    # record 3 repeats EM-1 seq 1 of record 1, which precedes the reset position: new to the rebuild
    assert rebuilt.totals.accepted == 3 and rebuilt.totals.duplicates == 0 and rebuilt.totals.records == 2

    later, _, _, sink3, _ = make(state)
    await later.initialize("shard-0", "4", [])  # a restart past the reset position: the saved state as usual
    assert later.generation == 3 and sink3.generations == {"shard-0": 3}
    assert later.totals == rebuilt.totals and len(later._dedup) == 2  # the state the rebuild saved at 4


async def test_sinks_hear_resume_at_the_checkpoint_or_just_before_the_first_record_without_one() -> None:
    """A staging file a crashed owner wrote past the checkpoint (or before the shard's first checkpoint) is
    superseded by the replay: sinks hear ``resume`` with the position the replay starts after."""
    at_checkpoint, *_, sink, _ = make()
    await at_checkpoint.initialize("shard-0", "7", [])
    assert sink.resumes == [("shard-0", Position(7, LAST_SUB))]

    started, *_, sink, _ = make()
    await started.initialize("shard-1", "TRIM_HORIZON", [])
    await started.process([], None)  # an empty poll knows no position yet
    assert sink.resumes == []
    await started.process(BATCH[:2], None)
    await started.process(BATCH[2:], None)
    assert sink.resumes == [("shard-1", Position(0, LAST_SUB))]  # once, before the first record (1)

    child, *_, sink, _ = make()
    await child.initialize("shard-2", None, ["shard-0"])
    await child.process([record(40, envelope(message("EM-4", 1)))], None)
    assert sink.resumes == [("shard-2", Position(39, LAST_SUB))]
