"""The driver-agnostic shard processor: the one piece both drivers (native and KCL) run.

It owns a shard's duplicate memory and totals and runs the pure batch stage.
Dead letters are written at once; the application's sinks may coalesce writes
in memory. Every ``checkpoint_interval`` (and on ``flush``/``shard_ended``) it
commits, in this order:

1. dead letters (already durable, written per batch),
2. the application's sinks are flushed (stats, staging, alarm state), each idempotent,
3. the shard state (duplicate memory + totals) is saved, keyed by the last
   sequence number processed,
4. ``process`` returns True and the driver checkpoints that sequence number.

A write that keeps failing after its retries raises: the driver stops the
shard without checkpointing and the batch replays, from the state saved at the
checkpoint, so nothing is lost and nothing is counted twice.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from wenu_stream.backoff import Backoff
from wenu_stream.errors import SinkRejected
from wenu_stream.health import HEALTH, Health
from wenu_stream.ingest.batch import (
    AcceptedMessage,
    BatchOutcome,
    DeadLetter,
    ParkedReason,
    Totals,
    process_batch,
)
from wenu_stream.ingest.dedup import Dedup
from wenu_stream.ingest.failures import Classifier, Failure, SinkFactory, SinkSet, default_classify
from wenu_stream.log import get_logger
from wenu_stream.metrics import Metrics
from wenu_stream.model import SHARD_END, HashRange, KinesisRecord, Position, parse_checkpoint
from wenu_stream.ports import BatchSink, DeadLetterStore, StateStore
from wenu_stream.records.crypto import KeyRing

LAST_SUB = 2**31 - 1  # a checkpoint at a whole Kinesis record covers every sub-record of an aggregate


class ShardState(msgspec.Struct, kw_only=True):
    """What is saved with every checkpoint."""

    totals: Totals
    dedup: bytes


class PipelineProcessor:
    """Implements ``ports.ShardProcessor`` for one application."""

    def __init__(
        self,
        *,
        app: str,
        keyring: KeyRing | Callable[[], Awaitable[KeyRing]],
        dead_letters: DeadLetterStore,
        state: StateStore,
        sinks: Sequence[BatchSink] = (),
        sink_factory: SinkFactory | None = None,
        metrics: Metrics,
        dedup_window: int = 4096,
        write_attempts: int = 0,
        classify: Classifier = default_classify,
        max_record_age_s: float = 0.0,
        checkpoint_interval: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        health: Health = HEALTH,
    ) -> None:
        self.app = app
        self._keyring = keyring
        self._dlq = dead_letters
        self._state = state
        self._metrics = metrics
        self._window = dedup_window
        self._attempts = write_attempts
        self._classify = classify
        self._factory = sink_factory
        self._set = SinkSet(
            "", sinks, factory=sink_factory, classify=classify, on_refused=self._refused,
            on_failure=self._failed, on_parked=self._parked, attempts=write_attempts,
            max_record_age_ms=int(max_record_age_s * 1000), wall_ms=lambda: int(self._wall() * 1000),
        )  # fmt: skip
        self.shard_id = ""
        self.totals = Totals()
        self._dedup = Dedup(dedup_window)
        self.generation = 0  # the shard's rebuild generation (ingest.rebuild), handed to the sinks
        self._resume_after: Position | None = None
        self._resume_at_first = False  # no checkpoint: sinks hear ``resume`` at the first record
        self._hash_range: HashRange | None = None  # misrouted KPL aggregates are dropped (ingest.batch)
        self._broken = False
        self._interval = checkpoint_interval
        self._monotonic = monotonic
        self._wall = wall
        self._last_commit = monotonic()
        self._pending: str | None = None  # last sequence processed but not yet committed
        self._last_sequence: str | None = (
            None  # last sequence processed (an idle tick's effects commit at it)
        )
        self._health = health
        self._failing: set[str] = set()  # sinks whose last attempt failed (readiness)
        self._log: Any = get_logger("wenu.processor")

    async def initialize(
        self,
        shard_id: str,
        checkpoint: str | None,
        parent_shard_ids: Sequence[str],
        hash_range: HashRange | None = None,
    ) -> None:
        """Load the state saved at ``checkpoint`` (or the parents' final states for a new child shard).

        A child shard without a checkpoint starts from the union of its parents' duplicate memories
        (a message re-delivered in the child is still a duplicate), with totals of its own (the
        report adds every shard's), and every sink hears ``inherit`` (alarms take over the parents'
        instances within ``hash_range``, their shard clocks and their pending notifications).

        A rebuild marker (``ingest.rebuild``) that applies to ``checkpoint`` starts
        the shard with empty duplicate memory and totals instead; its generation
        (0 without a marker) goes to every sink that has ``rebuild``. At a
        sequence-number checkpoint every sink hears ``resume`` (effects past it
        that a crashed owner made durable are made again by the replay); a shard
        started without one (TRIM_HORIZON, AT_TIMESTAMP, a new child) hears it
        just before its first record, at the batch that brings it (an owner killed
        before the shard's first checkpoint may have staged files from there on).
        """
        self.shard_id = self._set.shard_id = shard_id
        self._hash_range = hash_range
        self._log = self._log.bind(shard_id=shard_id, app=self.app)
        if self._factory is not None:  # this shard's own sinks: a rewind rebuilds them (ingest.failures)
            self._set.sinks = tuple(await self._factory())
        self._release()
        marker = await self._durable("state", lambda: self._state.rebuild_marker(shard_id))
        rebuilding = marker is not None and marker.applies(checkpoint)
        self.generation = self._set.generation = marker.generation if marker is not None else 0
        for sink in self._sinks:
            sink.rebuild(shard_id, self.generation)
        seq, sub = parse_checkpoint(checkpoint)
        self._resume_at_first = seq is None
        if seq is not None:
            # A reset with --rebuild asked this replay to recount from here: the state saved here is not used.
            blob = (
                None if rebuilding else await self._durable("state", lambda: self._state.load(shard_id, seq))
            )
            if blob is None and not rebuilding:
                self._log.warning(
                    "no_state_at_checkpoint",
                    checkpoint=checkpoint,
                    effect="duplicates sent before this checkpoint are not recognised",
                )
            elif blob is not None:
                self._restore(blob)
            self._resume_after = Position(int(seq), sub) if sub else None
            after = Position(int(seq), sub if sub else LAST_SUB)
            for sink in self._sinks:
                await self._durable(sink.name, functools.partial(sink.resume, shard_id, after))
        elif parent_shard_ids:
            parents = [
                await self._durable("state", functools.partial(self._state.load, p, SHARD_END))
                for p in parent_shard_ids
            ]
            dedups = [
                Dedup.load(msgspec.msgpack.decode(b, type=ShardState).dedup, self._window)
                for b in parents
                if b
            ]
            self._dedup = Dedup.merged(dedups, self._window)
            for sink in self._sinks:
                await self._durable(
                    sink.name, functools.partial(sink.inherit, shard_id, parent_shard_ids, hash_range)
                )
        self._log.info(
            "shard_initialized",
            checkpoint=checkpoint,
            parents=list(parent_shard_ids),
            devices_remembered=len(self._dedup),
            generation=self.generation,
            rebuilding=rebuilding,
        )

    async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> bool:
        """Run the batch; commit (module docstring, steps 2-3) when the interval has passed. True: checkpoint now."""
        if self._broken:
            raise RuntimeError("processor failed earlier; the shard must be restarted from its checkpoint")
        if not records:  # an idle poll: time-keeping sinks tick, and what is pending commits once due
            await self._idle()
            due = self._pending is not None and (
                self._urgent() or self._monotonic() - self._last_commit >= self._interval
            )
            return due and await self._commit() is not None
        started = time.monotonic()
        self._broken = True  # until this batch's effects are handed over or durable
        if self._resume_at_first:  # what a crashed owner made durable from this record on is made again
            self._resume_at_first = False
            after = Position(int(records[0].sequence_number) - 1, LAST_SUB)
            for sink in self._sinks:
                await self._durable(sink.name, functools.partial(sink.resume, self.shard_id, after))
        keyring = self._keyring if isinstance(self._keyring, KeyRing) else await self._keyring()
        outcome = process_batch(records, keyring, self._dedup, self._resume_after, self._hash_range)
        self._resume_after = None
        if outcome.dead_letters:
            await self._durable("dead_letter", lambda: self._dlq.put(self.shard_id, outcome.dead_letters))
        self.totals.add(outcome, len(records))
        await self._set.write(outcome)  # in memory mostly: only a durable write tells a sink recovered
        self._pending = self._last_sequence = records[-1].sequence_number
        committed = False
        if self._urgent() or self._monotonic() - self._last_commit >= self._interval:
            committed = await self._commit() is not None
        self._broken = False
        self._observe(outcome, started, millis_behind_latest)
        return committed

    @property
    def settled(self) -> bool:
        """No sink waits on another process for an effect (``ports.SinkBase.waiting``)."""
        return not any(sink.waiting for sink in self._sinks)

    def _urgent(self) -> bool:
        """A sink holds an effect that must not wait for the interval (an alarm notification): commit now."""
        return any(sink.has_pending for sink in self._sinks)

    async def _idle(self) -> None:
        now_ms = int(self._wall() * 1000)
        for sink in self._sinks:
            self._broken = True
            await sink.idle(self.shard_id, now_ms)
            self._broken = False
            self._pending = self._pending or self._last_sequence

    async def flush(self) -> str | None:
        """Commit now, then let the sinks settle the shard (the drivers flush when the shard stops here:
        a graceful stop, a handover, its end); return the sequence number the driver may checkpoint, or None
        if nothing is new."""
        if self._broken:
            raise RuntimeError("processor failed earlier; nothing may be checkpointed")
        sequence = await self._commit()
        for sink in self._sinks:
            await self._durable(sink.name, functools.partial(sink.settle, self.shard_id))
        return sequence

    async def _commit(self) -> str | None:
        if self._pending is None:
            return None
        await self._set.flush()
        self._recovered()
        sequence, blob = self._pending, self._dump()
        await self._durable("state", lambda: self._state.save(self.shard_id, sequence, blob))
        self._set.committed()
        self._pending = None
        self._last_commit = self._monotonic()
        return sequence

    async def shard_ended(self) -> None:
        """Commit, then save the final state for the child shards."""
        await self.flush()
        await self._durable("state", lambda: self._state.save(self.shard_id, SHARD_END, self._dump()))
        self._log.info("shard_ended", totals=msgspec.to_builtins(self.totals))

    async def close(self) -> None:
        """Drop what is not committed: it replays from the checkpoint on the next owner."""
        self._release()
        self._log.info("shard_closed", uncommitted=self._pending)

    def _release(self) -> None:
        for sink in self._sinks:
            sink.release(self.shard_id)

    def _restore(self, blob: bytes) -> None:
        saved = msgspec.msgpack.decode(blob, type=ShardState)
        self.totals = saved.totals
        self._dedup = Dedup.load(saved.dedup, self._window)

    def _dump(self) -> bytes:
        return msgspec.msgpack.encode(ShardState(totals=self.totals, dedup=self._dedup.dump()))

    @property
    def _sinks(self) -> tuple[BatchSink, ...]:
        return self._set.sinks

    async def _durable(self, sink: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """A write outside the sinks' batches (shard state, dead letters, hooks): transient failures retried."""
        started, backoff, failures = time.monotonic(), Backoff(base=0.1, cap=30.0), 0
        while True:
            try:
                result = await call()
                break
            except Exception as exc:
                kind = self._classify(exc)
                failures += 1
                self._failed(sink, exc, kind, failures)
                if kind is not Failure.TRANSIENT or (self._attempts and failures >= self._attempts):
                    raise
                await backoff.sleep()
        self._health.note(sink, ok=True)
        self._metrics.sink_seconds.labels(self.app, sink).observe(time.monotonic() - started)
        return result

    def _failed(self, sink: str, exc: BaseException, kind: Failure, attempt: int) -> None:
        """One failed attempt of a sink: metric, readiness, log (the policy is in ``ingest.failures``)."""
        sink = getattr(exc, "sink", None) or sink or "sinks"
        self._metrics.sink_failures.labels(self.app, sink).inc()
        self._health.note(sink, ok=False, error=repr(exc))
        self._failing.add(sink)
        self._log.warning("sink_retry", sink=sink, failure=str(kind), attempt=attempt, error=repr(exc))

    def _recovered(self) -> None:
        for sink in self._failing:
            self._health.note(sink, ok=True)
        self._failing.clear()

    async def _refused(self, refused: list[tuple[AcceptedMessage, SinkRejected]]) -> None:
        """Dead-letter what a sink refused (``sink_rejected``); a re-drive of it is new again."""
        letters = [
            DeadLetter(
                position=m.position,
                reason=ParkedReason.SINK_REJECTED.value,
                detail=str(exc),
                raw=m.raw,
                partition_key=m.partition_key,
                arrival_ms=m.arrival_ms,
            )
            for m, exc in refused
        ]
        await self._park_letters(letters, [m for m, _ in refused])
        self._log.error(
            "sink_rejected", records=len(letters), positions=[f"{d.position.sequence}:{d.position.sub}" for d in letters][:20],
            error=str(refused[0][1]), effect="dead-lettered as sink_rejected; the shard goes on",
        )  # fmt: skip

    async def _parked(self, messages: list[AcceptedMessage]) -> None:
        """``max_record_age`` passed while a sink kept failing: the uncommitted messages go to the dead letters."""
        letters = [
            DeadLetter(
                position=m.position,
                reason=ParkedReason.MAX_RECORD_AGE.value,
                detail="a sink kept failing past max_record_age; re-drive it once the sink is back",
                raw=m.raw,
                partition_key=m.partition_key,
                arrival_ms=m.arrival_ms,
            )
            for m in messages
        ]
        await self._park_letters(letters, messages)
        self._log.error("records_parked", records=len(letters), reason=ParkedReason.MAX_RECORD_AGE.value)

    async def _park_letters(self, letters: list[DeadLetter], messages: list[AcceptedMessage]) -> None:
        if not letters:
            return
        await self._durable("dead_letter", lambda: self._dlq.put(self.shard_id, letters))
        for m in messages:
            self._dedup.forget(m.message.device, m.message.seq, m.message.sent_at)
        reason = letters[0].reason
        self.totals.accepted -= len(letters)
        self.totals.rejected[reason] = self.totals.rejected.get(reason, 0) + len(letters)
        self._metrics.dead_letters.labels(self.app, reason).inc(len(letters))

    def _observe(self, outcome: BatchOutcome, started: float, millis_behind: int | None) -> None:
        m, app = self._metrics, self.app
        m.records.labels(app, "accepted").inc(len(outcome.accepted))
        m.records.labels(app, "rejected").inc(len(outcome.dead_letters))
        m.records.labels(app, "duplicate").inc(outcome.duplicates)
        if outcome.misrouted:
            self._log.warning(
                "misrouted_aggregates_dead_lettered",
                user_records=outcome.misrouted,
                effect="a KPL put them again on their own shard (a stale shard map after a reshard); "
                "dlq redrive --reason misrouted brings back any a producer did not",
            )
        for letter in outcome.dead_letters:
            m.dead_letters.labels(app, letter.reason).inc()
        m.batches.labels(app).observe(time.monotonic() - started)
        if millis_behind is not None:
            m.millis_behind.labels(app, self.shard_id).set(millis_behind)
