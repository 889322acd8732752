"""The sink failure policy (ingest.failures): transient failures retried, refusals bisected and dead-lettered,
records parked past max_record_age, bugs stop the shard."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from tests.support.records import RING, envelope, message, record
from wenu_stream.errors import SinkRejected
from wenu_stream.health import Health
from wenu_stream.ingest.failures import bisect
from wenu_stream.ingest.processor import PipelineProcessor
from wenu_stream.metrics import Metrics
from wenu_stream.testing import InMemoryBatchSink, InMemoryDeadLetterStore, InMemoryStateStore, SettableClock

ARRIVAL_S = 1_764_300_001.0


class PickySink(InMemoryBatchSink):
    """Refuses any flush holding a message of ``poison`` (as DynamoDB refuses an item); can fail ``fail_next``
    flushes transiently, or raise ``bug`` once."""

    def __init__(self, poison: set[str] | None = None) -> None:
        super().__init__("picky")
        self.poison = poison or set()
        self.bug: Exception | None = None
        self.flushes = 0

    async def flush(self) -> None:
        self.flushes += 1
        if self.bug is not None:
            raise self.bug
        devices = {m.message.device for _, o in self.pending for m in o.accepted}
        if devices & self.poison:
            raise SinkRejected(self.name, f"ValidationException: item of {sorted(devices & self.poison)[0]}")
        await super().flush()

    def durable(self) -> list[tuple[str, int]]:
        return [(m.message.device, m.message.seq) for _, o in self.batches for m in o.accepted]


def make(
    sink: PickySink, **kw: object
) -> tuple[PipelineProcessor, InMemoryDeadLetterStore, InMemoryStateStore]:
    dlq, state = InMemoryDeadLetterStore(), InMemoryStateStore()
    proc = PipelineProcessor(
        app="processing",
        keyring=RING,
        dead_letters=dlq,
        state=state,
        sinks=[sink],
        metrics=Metrics.create(CollectorRegistry()),
        checkpoint_interval=0.0,
        **kw,
    )  # type: ignore[arg-type]
    return proc, dlq, state


def batch(devices: list[str], start: int = 1) -> list:  # type: ignore[type-arg]
    return [record(start + i, envelope(message(d, start + i))) for i, d in enumerate(devices)]


async def test_bisect_isolates_each_refused_item_and_applies_the_rest_once() -> None:
    applied: list[int] = []
    pending: list[int] = []

    async def apply(part: list[int]) -> None:  # type: ignore[override]
        pending.extend(part)
        if any(i in (3, 11) for i in part):
            raise SinkRejected("s", f"refused {part}")
        applied.extend(pending)
        pending.clear()

    async def rewind() -> None:
        pending.clear()

    refused = await bisect(list(range(16)), apply, rewind)  # type: ignore[arg-type]
    assert [item for item, _ in refused] == [3, 11]
    assert sorted(applied) == [i for i in range(16) if i not in (3, 11)]  # each once, nothing lost


async def test_a_record_the_sink_refuses_is_dead_lettered_and_the_shard_goes_on() -> None:
    sink = PickySink(poison={"EM-BAD"})
    proc, dlq, state = make(sink)
    await proc.initialize("shard-0", None, [])
    assert await proc.process(batch(["EM-1", "EM-2", "EM-BAD", "EM-3", "EM-4"]), None) is True
    assert sorted(sink.durable()) == [("EM-1", 1), ("EM-2", 2), ("EM-3", 4), ("EM-4", 5)]
    assert [(k[1], d.reason) for k, d in dlq.letters.items()] == [(3, "sink_rejected")]
    (letter,) = dlq.letters.values()
    assert "ValidationException" in letter.detail and letter.raw  # the record itself, for dlq redrive
    assert proc.totals.accepted == 4 and proc.totals.rejected == {"sink_rejected": 1}
    assert ("shard-0", "5") in state.states  # checkpointed past it
    # a re-drive of the refused record (the sink fixed) is new, not a duplicate
    sink.poison.clear()
    await proc.process([record(9, letter.raw)], None)
    assert ("EM-BAD", 3) in sink.durable() and proc.totals.duplicates == 0


async def test_transient_failures_are_retried_until_they_heal_and_readiness_follows() -> None:
    sink, health = PickySink(), Health()
    proc, dlq, state = make(sink, health=health)
    await proc.initialize("shard-0", None, [])
    sink.fail_next = 3
    seen: list[bool] = []
    original = sink.flush

    async def watched() -> None:
        seen.append(health.readiness()[0])
        await original()

    sink.flush = watched  # type: ignore[method-assign]
    assert await proc.process(batch(["EM-1", "EM-2"]), None) is True
    assert seen[:4] == [True, False, False, False]  # not ready while the sink fails
    assert health.readiness()[0] is True  # ready again once it healed
    assert (
        sorted(sink.durable()) == [("EM-1", 1), ("EM-2", 2)] and not dlq.letters
    )  # each once, nothing parked
    assert ("shard-0", "2") in state.states


async def test_past_max_record_age_a_failing_sinks_records_are_parked_and_the_shard_goes_on() -> None:
    sink, wall = PickySink(), SettableClock(int(ARRIVAL_S * 1000))
    proc, dlq, state = make(sink, max_record_age_s=60.0, wall=wall.seconds)
    await proc.initialize("shard-0", None, [])
    sink.fail_next = 10**6  # an outage that does not end

    async def outage_ages() -> None:
        wall.advance(31.0)
        raise ConnectionError("outage")

    sink.flush = outage_ages  # type: ignore[method-assign]
    assert await proc.process(batch(["EM-1", "EM-2"]), None) is True
    assert sorted((k[1], d.reason) for k, d in dlq.letters.items()) == [
        (1, "max_record_age"),
        (2, "max_record_age"),
    ]
    assert proc.totals.accepted == 0 and proc.totals.rejected == {"max_record_age": 2}
    assert ("shard-0", "2") in state.states


async def test_without_max_record_age_nothing_is_ever_parked() -> None:
    sink = PickySink()
    proc, dlq, _ = make(sink, write_attempts=4)  # a bounded number of attempts, to end the test
    await proc.initialize("shard-0", None, [])
    sink.fail_next = 10
    with pytest.raises(ConnectionError):
        await proc.process(batch(["EM-1"]), None)
    assert not dlq.letters


async def test_a_bug_stops_the_shard_without_a_checkpoint() -> None:
    sink = PickySink()
    proc, dlq, state = make(sink)
    await proc.initialize("shard-0", None, [])
    sink.bug = KeyError("a programming error")
    with pytest.raises(KeyError):
        await proc.process(batch(["EM-1"]), None)
    assert sink.flushes == 1 and state.states == {} and not dlq.letters


async def test_a_batch_every_record_of_which_is_refused_is_not_about_the_data() -> None:
    sink = PickySink(poison={"EM-1", "EM-2"})
    proc, dlq, state = make(sink, write_attempts=3)
    await proc.initialize("shard-0", None, [])
    with pytest.raises(Exception, match="not about the data"):
        await proc.process(batch(["EM-1", "EM-2"]), None)
    assert not dlq.letters and state.states == {}
