"""One consumer task per held shard: read, hand over, checkpoint what is durable, end the shard.

Per batch, in this order:

1. GetRecords (fast path) from the current iterator, at most ``page_limit``
   records (``max_records``, less when many shards are held, so that the pages
   in memory at once stay bounded); on ExpiredIterator get a
   new one after the last record handed over (or from the lease checkpoint);
   on throttling or transient errors (a call past its deadline too) back off
   with full jitter and retry; failing for longer than ``aws.stall_s`` makes
   the worker not ready until a read succeeds;
2. ``processor.process(records, millis_behind)``, also for an empty poll, so
   the processor can commit what it coalesced;
3. if it returned True (effects durable) and a record was handed over since
   the last checkpoint, checkpoint that record's sequence number: a
   conditional write on the held lease, under the lease's lock so it never
   races a renewal;
4. a null ``NextShardIterator`` ends the shard: ``processor.shard_ended()``,
   then checkpoint SHARD_END (with the child shard ids), then release the lease;
5. sleep ``poll_interval_ms`` unless records came back and MillisBehindLatest > 0.

Graceful handoff (``leases`` module docstring): a consumer whose lease another
worker took with ``checkpointOwner`` set to us is asked to ``hand_over``: it
stops reading after the batch in flight, flushes, writes its last checkpoint
with ``LeaseTable.hand_over`` and closes, without releasing (the lease is not
ours). A consumer that starts on a lease still naming another
``checkpointOwner`` waits for that owner to hand over (at most ``failover_ms``)
and reads the lease again before it initializes its processor.

What ``initialize`` receives as checkpoint: the lease's ``checkpoint`` verbatim
(a sentinel such as TRIM_HORIZON, or ``"<seq>"``), or ``"<seq>:<sub>"`` when
the KCL left a sub-sequence checkpoint inside an aggregated record. In that
case reading restarts AT that sequence number and the processor skips the
sub-records up to ``<sub>``; otherwise it restarts AFTER the checkpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wenu_stream.backoff import Backoff, sleep_unless
from wenu_stream.config import Config
from wenu_stream.drivers.native import kinesis
from wenu_stream.drivers.native.kinesis import (
    ExpiredIteratorError,
    FastGetRecords,
    GetRecordsOutput,
    RetryableError,
)
from wenu_stream.drivers.native.leases import Lease, LeaseTable
from wenu_stream.errors import LeaseLostError
from wenu_stream.health import Health
from wenu_stream.metrics import CheckpointClock, Metrics
from wenu_stream.model import AT_TIMESTAMP, LATEST, SHARD_END, TRIM_HORIZON, HashRange
from wenu_stream.ports import ShardProcessor

if TYPE_CHECKING:
    from types_aiobotocore_kinesis.client import KinesisClient
    from types_aiobotocore_kinesis.literals import ShardIteratorTypeType

ENDED, STOPPED, LOST, FAILED, HANDED_OVER = "ended", "stopped", "lost", "failed", "handed_over"

PAGE_BUDGET = 20_000  # records asked for by all the shards of a worker together, per round of GetRecords
MIN_PAGE = 1_000


def page_limit(max_records: int, shards_held: int) -> int:
    """GetRecords ``Limit`` for one shard: ``max_records``, shared out of ``PAGE_BUDGET`` when many shards are held.

    Every held shard can have one page decoded in memory (and its response body) at once, so peak
    memory grows with shards x page size; 10,000-record pages of 8 shards cost about 25 MB more
    than 2,500-record ones. A smaller page costs one more call per page (well under a microsecond
    per record) and still reads 5 calls/s x 2,500 = 12,500 records/s per shard when catching up.
    """
    return min(max_records, max(MIN_PAGE, PAGE_BUDGET // max(shards_held, 1)))


class HeldLease:
    """A lease this worker holds. Every write goes through ``write`` under one lock (renewals vs checkpoints)."""

    def __init__(self, lease: Lease, table: LeaseTable, now: Callable[[], float] = time.monotonic) -> None:
        self.lease = lease
        self.table = table
        self.lock = asyncio.Lock()
        self.renewed_at = now()
        self.lost = False
        self.released = False
        self._now = now

    @property
    def shard_id(self) -> str:
        return self.lease.lease_key

    async def renew(self) -> None:
        """Bump the counter; a no-op once the lease was given back or lost (a renewal may wait behind that write)."""
        async with self.lock:
            if self.released or self.lost:
                return
            try:
                self.lease = await self.table.renew(self.lease)
            except LeaseLostError:
                self.lost = True
                raise
        self.renewed_at = self._now()

    async def release(self) -> None:
        """Give the lease back (``leaseOwner`` removed) so another worker takes it at once."""
        await self.write(self.table.release)
        self.released = True

    async def write(self, change: Callable[[Lease], Any]) -> None:
        """Apply a conditional change; a lost condition marks the lease lost and raises ``LeaseLostError``."""
        async with self.lock:
            if self.lost or self.released:
                raise LeaseLostError(f"lease {self.shard_id} already lost")
            try:
                self.lease = await change(self.lease)
            except LeaseLostError:
                self.lost = True
                raise


class WorkerState:
    """What the consumers of one worker share: clients, settings, counters, the stop signal."""

    def __init__(
        self,
        config: Config,
        *,
        table: LeaseTable,
        fast: FastGetRecords,
        kinesis_client: KinesisClient,
        metrics: Metrics,
        stop: asyncio.Event,
        log: Any,
        health: Health | None = None,
    ) -> None:
        self.config = config
        self.health = health or Health(stall_s=config.aws.stall_s)
        self.table = table
        self.fast = fast
        self.kinesis = kinesis_client
        self.metrics = metrics
        self.stop = stop
        self.log = log
        self.resync = asyncio.Event()
        self.children: dict[str, set[str]] = {}  # parent shard id -> child shard ids, from ListShards
        self.shards_held = 0  # kept by the worker: how many consumers share PAGE_BUDGET
        self.records = 0
        self.checkpoints = 0
        self.shards_ended = 0
        self.last_records_at = time.monotonic()


def hash_range_of(lease: Lease) -> HashRange | None:
    """The shard's hash-key range as its lease row keeps it (None for a row written without it)."""
    if lease.starting_hash_key is None or lease.ending_hash_key is None:
        return None
    return HashRange(int(lease.starting_hash_key), int(lease.ending_hash_key))


def start_position(checkpoint: str, sub: int) -> tuple[ShardIteratorTypeType, str | None]:
    """The GetShardIterator type and sequence number that resume after a lease checkpoint."""
    if checkpoint in (
        TRIM_HORIZON,
        AT_TIMESTAMP,
    ):  # AT_TIMESTAMP carries no timestamp in the row: read it all
        return TRIM_HORIZON, None
    if checkpoint == LATEST:
        return LATEST, None
    return ("AT_SEQUENCE_NUMBER" if sub else "AFTER_SEQUENCE_NUMBER"), checkpoint


class ShardConsumer:
    """Consumes one held shard until it ends, the worker stops, the lease is lost or the processor fails."""

    def __init__(self, state: WorkerState, held: HeldLease, processor: ShardProcessor) -> None:
        self.state = state
        self.held = held
        self.processor = processor
        self.shard_id = held.shard_id
        self.log = state.log.bind(shard_id=self.shard_id)
        lease = held.lease
        self.resume = start_position(lease.checkpoint, lease.checkpoint_sub_sequence_number)
        self.iterator: str | None = None
        self.handed: str | None = None  # last sequence number handed to the processor
        self.checkpointed: str | None = None
        self.clock = CheckpointClock()  # how long handed records wait for a checkpoint
        self.backoff = Backoff()
        # the last GetRecords returned nothing and the processor is settled: for the idle exit
        self.caught_up = False
        self.leave = asyncio.Event()  # set when the worker stops or the shard is handed over
        self.handing_over = False
        self.durable: str | None = None  # last sequence number the processor said was durable
        self._reads = f"reads of {self.shard_id}"  # readiness: GetRecords failing for longer than aws.stall_s

    def hand_over(self) -> None:
        """Another worker took the lease and waits for our last checkpoint: stop after the batch in flight."""
        self.handing_over = True
        self.leave.set()

    async def run(self) -> str:
        """Consume; return ENDED, STOPPED, LOST, FAILED or HANDED_OVER. A cancellation (lease lost, crash) never
        checkpoints."""
        relay = asyncio.create_task(self._relay_stop())
        try:
            return await self._consume()
        except asyncio.CancelledError:
            await self._close()
            raise
        except LeaseLostError:
            if self.handing_over or await self.asked_to_hand_over():  # a checkpoint raced the renewer
                return await self._hand_over_or_close()
            self.log.warning("lease_lost", effect="stopped without checkpointing; the new owner replays")
            await self._close()
            return LOST
        except Exception:
            # A processor bug or a sink that stayed down: no checkpoint, release, and the worker exits non-zero.
            self.log.exception("shard_failed", effect="not checkpointed; the batch replays on the next owner")
            await self._close()
            await self._release()
            return FAILED
        finally:
            relay.cancel()

    async def asked_to_hand_over(self) -> bool:
        """True if the lease row names this worker as ``checkpointOwner`` (a graceful handoff is requested)."""
        try:
            row = await self.state.table.get(self.shard_id)
        except Exception as exc:  # noqa: BLE001 - unreadable: treat as a plain loss, the new owner replays
            self.log.warning("lease_read_failed", error=repr(exc))
            return False
        return row is not None and row.checkpoint_owner == self.state.config.worker_id

    async def _hand_over_or_close(self) -> str:
        self.handing_over = True
        try:
            return await self._handed_over()
        except Exception:
            self.log.exception("handoff_failed", effect="not checkpointed; the new owner replays")
            await self._close()
            return LOST

    async def _relay_stop(self) -> None:
        await self.state.stop.wait()
        self.leave.set()

    async def _consume(self) -> str:
        if self.held.lease.checkpoint_owner not in (None, self.state.config.worker_id):
            await self._await_handoff()
        lease = self.held.lease
        await self.processor.initialize(
            self.shard_id, lease.position, lease.parent_shard_ids, hash_range_of(lease)
        )
        self.log.info("shard_started", checkpoint=lease.position, start=self.resume[0])
        poll = self.state.config.kinesis.poll_interval_ms / 1000
        while not self.leave.is_set():
            out = await self._next_batch()
            if out is None:
                break
            records = out.records
            self.caught_up = not records and self.processor.settled
            if records:
                self.clock.handed()
            durable = await self.processor.process(records, out.millis_behind_latest)
            if records:
                self._handed(out)
            if durable:
                self.durable = self.handed
            if durable and self.handed is not None and self.handed != self.checkpointed:
                await self._checkpoint(self.handed)
            self._observe(out)
            if out.next_shard_iterator is None:
                return await self._end(out)
            idle = not records or not out.millis_behind_latest
            del out, records  # the page is done with: not kept alive while the next one is read
            if idle:
                await sleep_unless(self.leave, poll)
        return await (self._handed_over() if self.handing_over else self._stop())

    async def _await_handoff(self) -> None:
        """Wait until the previous owner handed the lease over (at most ``failover_ms``), then read it again."""
        held, table = self.held, self.state.table
        old = held.lease.checkpoint_owner
        self.log.info("handoff_awaited", from_owner=old)
        deadline = time.monotonic() + self.state.config.lease.failover_ms / 1000
        while True:
            row = await table.get(self.shard_id)
            if row is None or row.lease_owner != self.state.config.worker_id:
                raise LeaseLostError(f"lease {self.shard_id} moved on while waiting for its handoff")
            if row.checkpoint_owner is None:
                break
            if time.monotonic() > deadline:
                self.log.warning(
                    "handoff_timed_out", from_owner=old, effect="replays from its last checkpoint"
                )
                await held.write(table.end_handoff)
                break
            await sleep_unless(self.leave, 0.1)
        async with held.lock:  # the row as it is now: the old owner's last checkpoint, our current counter
            fresh = await table.get(self.shard_id)
            if fresh is None or fresh.lease_owner != self.state.config.worker_id:
                raise LeaseLostError(f"lease {self.shard_id} moved on while waiting for its handoff")
            held.lease = fresh
        self.resume = start_position(fresh.checkpoint, fresh.checkpoint_sub_sequence_number)

    async def _handed_over(self) -> str:
        """Graceful handoff, old owner's side: flush, write the last checkpoint through ``hand_over``, close."""
        target = await self.processor.flush() or self.durable
        done = await self.state.table.hand_over(
            self.shard_id, self.state.config.worker_id, target if target != self.checkpointed else None
        )
        if done and target is not None:
            self.checkpointed = target
            self.clock.checkpointed()
        await self._close()
        self.log.info("shard_handed_over", checkpoint=self.checkpointed, in_time=done)
        return HANDED_OVER

    def _handed(self, out: GetRecordsOutput) -> None:
        self.handed = out.records[-1].sequence_number
        self.resume = ("AFTER_SEQUENCE_NUMBER", self.handed)
        self.state.records += len(out.records)
        self.state.last_records_at = time.monotonic()

    async def _next_batch(self) -> GetRecordsOutput | None:
        """The next GetRecords response, or None when the worker stops while backing off."""
        state = self.state
        limit = page_limit(state.config.kinesis.max_records, state.shards_held)
        while not self.leave.is_set():
            try:
                if self.iterator is None:
                    self.iterator = await kinesis.get_shard_iterator(
                        state.kinesis, state.config.kinesis.stream, self.shard_id, *self.resume
                    )
                out = await state.fast.get_records(self.iterator, limit)
            except ExpiredIteratorError:
                state.metrics.kinesis_read_errors.labels(state.config.app, "expired_iterator").inc()
                self.log.info("iterator_expired", resume=self.resume[0])
                self.iterator = None
                continue
            except RetryableError as exc:
                state.metrics.kinesis_read_errors.labels(state.config.app, exc.kind).inc()
                state.health.report(self._reads, ok=False, error=str(exc), grace_s=state.config.aws.stall_s)
                self.log.warning("kinesis_retry", error=str(exc), attempt=self.backoff.failures + 1)
                await self.backoff.wait(self.leave)
                continue
            self.backoff.reset()
            state.health.report(self._reads, ok=True)
            self.iterator = out.next_shard_iterator
            return out
        return None

    async def _checkpoint(self, sequence: str, children: tuple[str, ...] = ()) -> None:
        await self.held.write(lambda lease: self.state.table.checkpoint(lease, sequence, 0, children))
        self.checkpointed = sequence
        if sequence in (self.handed, SHARD_END):
            self.clock.checkpointed()
        self.state.checkpoints += 1
        self.state.metrics.checkpoints.labels(self.state.config.app).inc()

    async def _end(self, out: GetRecordsOutput) -> str:
        await self.processor.shard_ended()
        children = set(self.state.children.get(self.shard_id, ()))
        children.update(c.shard_id for c in out.child_shards or ())
        await self._checkpoint(SHARD_END, tuple(sorted(children)))
        self.state.shards_ended += 1
        self.state.resync.set()  # create the children's leases now
        self.log.info("shard_end_checkpointed", children=sorted(children))
        await self._close()
        await self._release()
        return ENDED

    async def _stop(self) -> str:
        """Graceful stop: make what is pending durable, checkpoint it, close, release the lease."""
        sequence = await self.processor.flush()
        if sequence is not None and sequence != self.checkpointed:
            await self._checkpoint(sequence)
        await self._close()
        await self._release()
        self.log.info("shard_stopped", checkpoint=self.checkpointed)
        return STOPPED

    async def _close(self) -> None:
        try:
            await self.processor.close()
        except Exception:
            self.log.exception("processor_close_failed")

    async def _release(self) -> None:
        try:
            await self.held.release()
        except LeaseLostError:
            pass  # someone else holds it already: nothing to give back
        except Exception:
            self.log.exception("lease_release_failed", effect="the lease expires after failover_ms instead")

    def observe_checkpoint_age(self) -> None:
        """Publish the checkpoint age (at every poll, and from the worker's renewer between polls)."""
        self.state.metrics.checkpoint_age.labels(self.state.config.app, self.shard_id).set(self.clock.age())

    def forget_metrics(self) -> None:
        """Drop this shard's gauges: a shard this worker no longer holds must not show its last values."""
        m, app = self.state.metrics, self.state.config.app
        for gauge in (m.checkpoint_age, m.millis_behind):
            try:
                gauge.remove(app, self.shard_id)
            except KeyError:
                pass

    def _observe(self, out: GetRecordsOutput) -> None:
        m, app = self.state.metrics, self.state.config.app
        if out.millis_behind_latest is not None:
            m.millis_behind.labels(app, self.shard_id).set(out.millis_behind_latest)
        self.observe_checkpoint_age()
