"""The native asyncio worker: a lease coordinator plus one consumer task per held shard, in one process.

The coordinator, every ``failover_ms / 2``:

1. lists the shards (ListShards by StreamName, every ``discovery_interval_ms``
   or at once after a shard ended) and creates the missing lease rows, parents
   first (a child of a tracked shard starts at TRIM_HORIZON, any other shard at
   ``kinesis.initial_position``; with LATEST, closed shards get no lease);
2. scans the lease table and notes which leases stood still for ``failover_ms``;
3. takes free or expired leases up to an even share (steals at most one lease
   per pass from the most loaded worker), never a child whose parents have
   not reached SHARD_END, and starts a consumer for each lease it won.

A renewer bumps every held lease every ``failover_ms / 3`` (a renewal still
in flight is not started again). A lease not renewed for ``failover_ms / 2``
(a stalled or failing DynamoDB) logs ``lease_renewal_late`` and makes the
worker not ready until a renewal succeeds. A lost condition (or no successful
renewal for ``failover_ms``) stops that shard's consumer at once, without a
checkpoint, unless the lease was taken from us for a graceful
handoff (step 3 takes a live worker's lease that way, ``leases`` module
docstring): then the consumer finishes its batch, flushes and hands its last
checkpoint over, and is cancelled only if that takes longer than ``failover_ms``.

Stopping (``stop`` set, SIGTERM in ``wenu-stream run``, or ``idle_exit_s``
with no records, every shard caught up and every processor ``settled``, so an
idle exit leaves no notification waiting on a dead worker's claim behind):
consumers stop reading, finish the batch in flight, flush and checkpoint what
is durable, close the processor and release their leases. A failure policy:
an exception from the processor (or a checkpoint write that keeps failing)
stops that shard without a checkpoint, releases its lease, and then stops the
whole worker the same graceful way with ``WorkerResult.failed`` set, so the
process exits non-zero, the container is restarted and the batch replays.
Cancelling ``run_worker`` is a crash: nothing is checkpointed or released.

Once its clients are open the worker collects garbage once and freezes what is
alive (``gc.freeze``): the SDK's service models, modules and clients stay for
the life of the worker, and a full collection, which batches of decoded records
trigger now and then, no longer walks them (about 0.3 CPU-s per 100k records).
They are unfrozen when the worker returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import random
import time
from collections.abc import Sequence

import aiohttp
import msgspec
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import BotoCoreError, ClientError

from wenu_stream.aws.common import client_config
from wenu_stream.aws.deadlines import Deadlines, with_deadlines
from wenu_stream.config import Config
from wenu_stream.drivers.native import kinesis
from wenu_stream.drivers.native.balance import ExpiryTracker, is_ready, plan_takes
from wenu_stream.drivers.native.consumer import FAILED, HeldLease, ShardConsumer, WorkerState
from wenu_stream.drivers.native.kinesis import FastGetRecords, Shard
from wenu_stream.drivers.native.leases import Lease, LeaseTable
from wenu_stream.errors import LeaseLostError
from wenu_stream.health import Health
from wenu_stream.log import get_logger
from wenu_stream.metrics import Metrics
from wenu_stream.model import LATEST, TRIM_HORIZON
from wenu_stream.ports import ShardProcessorFactory

# The most a stop waits to give back the leases of abandoned shards (within ECS's stop timeout).
RELEASE_S = 5.0


class WorkerResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a worker did before it stopped. ``failed``: a shard failed; exit non-zero so the batch replays."""

    records: int = 0
    checkpoints: int = 0
    shards_ended: int = 0
    failed: bool = False


class Worker:
    """Holds leases of one stream and runs a ``ShardProcessor`` per held shard (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        factory: ShardProcessorFactory,
        *,
        metrics: Metrics,
        stop: asyncio.Event | None = None,
        session: AioSession | None = None,
        health: Health | None = None,
    ) -> None:
        self.config = config
        self.factory = factory
        self.metrics = metrics
        self.stop = stop or asyncio.Event()
        self.session = session or get_session()
        self.worker_id = config.worker_id
        self.log = get_logger("wenu.driver").bind(app=config.app, worker=self.worker_id)
        self.held: dict[str, HeldLease] = {}
        self.tasks: dict[str, asyncio.Task[str]] = {}
        self.consumers: dict[str, ShardConsumer] = {}
        self.failed = False
        self._expiry = ExpiryTracker(config.lease.failover_ms)
        self._shards: list[Shard] = []
        self._listed_at = -1e18
        self._rng = random.Random()
        aws = config.aws
        self.health = health or Health(stall_s=aws.stall_s)
        self.deadlines = Deadlines(aws.call_deadline_s, self.health.calls, stall_s=aws.stall_s)
        self._renewals: dict[str, asyncio.Task[None]] = {}
        self._late: set[str] = set()  # shards whose lease renewal is late (warned once)

    async def run(self) -> WorkerResult:
        """Run until stopped; return the counts. See the module docstring for the stop and failure policy."""
        async with contextlib.AsyncExitStack() as stack:
            aws = self.config.aws
            sdk = client_config(aws.connect_timeout_s, aws.read_timeout_s)
            ddb = with_deadlines(
                await stack.enter_async_context(self.session.create_client("dynamodb", config=sdk)),
                "dynamodb",
                self.deadlines,
            )
            kin = with_deadlines(
                await stack.enter_async_context(self.session.create_client("kinesis", config=sdk)),
                "kinesis",
                self.deadlines,
            )
            fast = await FastGetRecords.open(
                self.session,
                kin,
                deadlines=self.deadlines,
                connect_s=aws.connect_timeout_s,
                read_s=aws.read_timeout_s,
            )
            stack.push_async_callback(fast.close)
            table = LeaseTable(ddb, self.config.lease_table)
            await table.ensure()
            gc.collect()
            gc.freeze()
            stack.callback(gc.unfreeze)
            self.state = WorkerState(
                self.config,
                table=table,
                fast=fast,
                kinesis_client=kin,
                metrics=self.metrics,
                stop=self.stop,
                log=self.log,
                health=self.health,
            )
            self.log.info("worker_started", stream=self.config.kinesis.stream, table=table.name)
            renewer = asyncio.create_task(self._renew_loop())
            try:
                await self._coordinate()
                await self._drain()
            finally:
                renewer.cancel()
                for task in self.tasks.values():
                    task.cancel()
                await asyncio.gather(renewer, *self.tasks.values(), return_exceptions=True)
        s = self.state
        result = WorkerResult(
            records=s.records, checkpoints=s.checkpoints, shards_ended=s.shards_ended, failed=self.failed
        )
        self.log.info("worker_finished", **msgspec.to_builtins(result))
        return result

    async def _coordinate(self) -> None:
        interval = self.config.lease.failover_ms / 2000
        while not self.stop.is_set():
            passing = asyncio.ensure_future(self._pass())
            stopping = asyncio.ensure_future(self.stop.wait())
            try:  # a pass stalled on a black-holed DynamoDB or Kinesis must not hold the stop up
                await asyncio.wait({passing, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                if not passing.done():
                    passing.cancel()
            await asyncio.gather(passing, return_exceptions=True)
            if not passing.cancelled():
                passing.result()  # a bug in a pass ends the worker, as before
            if await self._wait(interval):
                return

    async def _wait(self, seconds: float) -> bool:
        """Sleep until the next pass (earlier when a shard ended); True if the worker is stopping."""
        resync = asyncio.ensure_future(self.state.resync.wait())
        stop = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({resync, stop}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            resync.cancel()
            stop.cancel()
        return self.stop.is_set()

    async def _pass(self) -> None:
        """One coordinator pass: discover and sync, then take leases (module docstring, steps 1-3)."""
        now = time.monotonic()
        try:
            leases = await self.state.table.scan()
            discovery = self.config.lease.discovery_interval_ms / 1000
            if self.state.resync.is_set() or now - self._listed_at >= discovery:
                self.state.resync.clear()
                self._shards = await kinesis.list_shards(self.state.kinesis, self.config.kinesis.stream)
                self._listed_at = now
                self._note_children()
                if await self._sync(leases):
                    leases = await self.state.table.scan()
            await self._take(leases)
        except (kinesis.KinesisError, ClientError, BotoCoreError, aiohttp.ClientError, OSError) as exc:
            # the SDK already retried; the next pass tries again, held leases keep being renewed meanwhile
            self.log.warning("coordinator_pass_failed", error=repr(exc))
            self.health.report(
                "lease coordination", ok=False, error=repr(exc), grace_s=self.config.aws.stall_s
            )
            return
        self.health.report("lease coordination", ok=True)

    def _note_children(self) -> None:
        children: dict[str, set[str]] = {}
        for shard in self._shards:
            for parent in shard.parents:
                children.setdefault(parent, set()).add(shard.shard_id)
        self.state.children = children

    async def _sync(self, leases: Sequence[Lease]) -> bool:
        """Create lease rows for shards without one, parents first. True if a row was created."""
        tracked = {lease.lease_key for lease in leases}
        created = False
        for shard in parents_first(self._shards):
            if shard.shard_id in tracked:
                continue
            if (
                any(p in tracked for p in shard.parents)
                or self.config.kinesis.initial_position == TRIM_HORIZON
            ):
                checkpoint = TRIM_HORIZON
            elif shard.ending_sequence_number is not None:
                continue  # LATEST: a closed shard holds nothing newer than now
            else:
                checkpoint = LATEST
            lease = Lease(
                lease_key=shard.shard_id,
                checkpoint=checkpoint,
                parent_shard_ids=tuple(shard.parents),
                starting_hash_key=shard.starting_hash_key or None,
                ending_hash_key=shard.ending_hash_key or None,
            )
            created |= await self.state.table.create(lease)
            tracked.add(shard.shard_id)
        return created

    async def _take(self, leases: Sequence[Lease]) -> None:
        expired = self._expiry.expired(leases, time.monotonic() * 1000)
        shard_ids = {s.shard_id for s in self._shards}
        by_key = {lease.lease_key: lease for lease in leases}
        candidates = [
            lease
            for lease in leases
            if lease.lease_key in shard_ids and not lease.ended and is_ready(lease, by_key, shard_ids)
        ]
        if self._idle(candidates, expired):
            self.log.info("idle_exit", idle_s=self.config.kinesis.idle_exit_s)
            self.stop.set()
            return
        wanted = plan_takes(
            candidates,
            me=self.worker_id,
            held=self.held.keys(),
            expired=expired,
            max_leases=self.config.lease.max_leases,
            rng=self._rng,
        )
        for lease in wanted:
            live = lease.lease_owner not in (None, self.worker_id) and lease.lease_key not in expired
            taken = await self.state.table.take(lease, self.worker_id, handoff=live)
            if taken is None:
                continue
            self.log.info(
                "lease_taken",
                shard_id=lease.lease_key,
                from_owner=lease.lease_owner,
                checkpoint=taken.position,
            )
            self._start(taken)

    def _idle(self, candidates: Sequence[Lease], expired: set[str]) -> bool:
        """``idle_exit_s`` passed with no records, every shard we read is caught up, every other one held or ended."""
        idle_s = self.config.kinesis.idle_exit_s
        if not idle_s or time.monotonic() - self.state.last_records_at < idle_s:
            return False
        if not all(consumer.caught_up for consumer in self.consumers.values()):
            return False
        return all(
            lease.lease_key in self.held
            or (
                lease.lease_owner is not None
                and lease.lease_key not in expired
                and lease.lease_owner != self.worker_id
            )
            for lease in candidates
        )

    def _start(self, lease: Lease) -> None:
        held = HeldLease(lease, self.state.table)
        self.held[lease.lease_key] = held
        consumer = ShardConsumer(self.state, held, self.factory(lease.lease_key))
        task = asyncio.create_task(consumer.run(), name=f"shard-{lease.lease_key}")
        self.tasks[lease.lease_key] = task
        self.consumers[lease.lease_key] = consumer
        task.add_done_callback(functools.partial(self._finished, lease.lease_key))
        self.state.shards_held = len(self.held)
        self.metrics.leases_held.labels(self.config.app).set(len(self.held))

    def _finished(self, key: str, task: asyncio.Task[str]) -> None:
        self.held.pop(key, None)
        self.tasks.pop(key, None)
        consumer = self.consumers.pop(key, None)
        if consumer is not None:
            consumer.forget_metrics()
        self.state.shards_held = len(self.held)
        self.metrics.leases_held.labels(self.config.app).set(len(self.held))
        outcome = (
            "cancelled"
            if task.cancelled()
            else (repr(task.exception()) if task.exception() else task.result())
        )
        self.health.forget(f"lease {key}")
        self.health.forget(f"reads of {key}")
        self._late.discard(key)
        renewal = self._renewals.pop(key, None)
        if renewal is not None:
            renewal.cancel()
        if outcome == FAILED or (not task.cancelled() and task.exception() is not None):
            self.failed = True
            self.stop.set()  # one failed shard stops the worker: exit non-zero, the batch replays
        self.log.info("consumer_finished", shard_id=key, outcome=outcome)

    async def _renew_loop(self) -> None:
        interval = self.config.lease.failover_ms / 3000
        try:
            while True:
                await asyncio.sleep(interval)
                for held in list(self.held.values()):
                    running = self._renewals.get(held.shard_id)
                    if running is None or running.done():  # a stalled renewal is not stacked up
                        renewal = asyncio.create_task(self._renew(held))
                        renewal.add_done_callback(self._renewed)
                        self._renewals[held.shard_id] = renewal
                for held in list(self.held.values()):
                    self._check_renewal(held)
                for consumer in list(
                    self.consumers.values()
                ):  # between polls too: a hung shard's age keeps growing
                    consumer.observe_checkpoint_age()
        finally:
            for renewal in self._renewals.values():
                renewal.cancel()

    def _renewed(self, renewal: asyncio.Task[None]) -> None:
        if (
            not renewal.cancelled() and renewal.exception() is not None
        ):  # a bug must not end renewals silently
            self.log.error("lease_renew_crashed", error=repr(renewal.exception()))

    def _check_renewal(self, held: HeldLease) -> None:
        """Late renewals: a warning and not ready past ``failover_ms / 2``; the shard stops past ``failover_ms``."""
        failover = self.config.lease.failover_ms / 1000
        key, late = held.shard_id, time.monotonic() - held.renewed_at
        if held.lost or held.released or late < failover / 2:
            if key in self._late:
                self._late.discard(key)
                self.log.info("lease_renewed_again", shard_id=key)
            self.health.report(f"lease {key}", ok=True)
            return
        problem = f"not renewed for {late:.1f}s (failover {failover:g}s)"
        self.health.report(f"lease {key}", ok=False, error=problem)
        if key not in self._late:
            self._late.add(key)
            self.log.warning(
                "lease_renewal_late", shard_id=key, late_s=round(late, 1), failover_s=failover,
                effect="not ready; the shard stops without checkpointing if no renewal lands within the failover time",
            )  # fmt: skip
        if late >= failover:
            self.log.warning("lease_expired_locally", shard_id=key, error=problem)
            held.lost = True
            task = self.tasks.get(key)
            if task is not None:
                task.cancel()

    async def _renew(self, held: HeldLease) -> None:
        try:
            await held.renew()
            return
        except LeaseLostError:
            consumer = self.consumers.get(held.shard_id)
            if consumer is not None and await consumer.asked_to_hand_over():
                self.log.info("lease_handoff_requested", shard_id=held.shard_id)
                consumer.hand_over()
                self._cancel_later(held.shard_id, self.config.lease.failover_ms / 1000)
                return
            self.log.warning(
                "lease_lost", shard_id=held.shard_id, effect="consumer stopped without checkpointing"
            )
        except (ClientError, BotoCoreError, aiohttp.ClientError, OSError) as exc:
            # the next one tries again; _check_renewal stops the shard once the failover time has passed
            self.log.warning("lease_renew_failed", shard_id=held.shard_id, error=repr(exc))
            return
        task = self.tasks.get(held.shard_id)
        if task is not None:
            task.cancel()

    def _cancel_later(self, shard_id: str, seconds: float) -> None:
        """Cancel a consumer handing over if it has not finished within ``seconds`` (the new owner stops waiting)."""
        task = self.tasks.get(shard_id)
        if task is not None:
            asyncio.get_running_loop().call_later(seconds, lambda: task.done() or task.cancel())

    async def _drain(self) -> None:
        """Wait for every consumer to finish its graceful stop (they watch ``stop``), at most ``stop_grace_s``.

        A consumer still busy then (a sink that keeps failing: its batch cannot become durable) is
        cancelled without a checkpoint, and its lease given back: the batch replays on the next owner.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.kinesis.stop_grace_s
        while self.tasks:
            remaining = deadline - loop.time()
            if remaining <= 0:
                stuck = dict(self.held)
                self.log.warning(
                    "stop_grace_expired", shards=sorted(self.tasks), effect="not checkpointed; they replay"
                )
                for task in list(self.tasks.values()):
                    task.cancel()
                await asyncio.gather(*list(self.tasks.values()), return_exceptions=True)
                with contextlib.suppress(TimeoutError):  # a black-holed DynamoDB: the leases expire instead
                    async with asyncio.timeout(RELEASE_S):
                        await asyncio.gather(
                            *(held.release() for held in stuck.values()), return_exceptions=True
                        )
                return
            await asyncio.wait(list(self.tasks.values()), timeout=remaining)


def parents_first(shards: Sequence[Shard]) -> list[Shard]:
    """``shards`` ordered so that every parent present in the list comes before its children."""
    present = {s.shard_id for s in shards}
    done: set[str] = set()
    ordered: list[Shard] = []
    pending = list(shards)
    while pending:
        ready = [s for s in pending if all(p in done or p not in present for p in s.parents)]
        if not ready:  # a cycle cannot happen in Kinesis; keep the rest in listed order rather than loop
            ready = pending
        ordered.extend(ready)
        done.update(s.shard_id for s in ready)
        pending = [s for s in pending if s.shard_id not in done]
    return ordered


async def run_worker(
    config: Config,
    factory: ShardProcessorFactory,
    *,
    metrics: Metrics,
    stop: asyncio.Event | None = None,
    session: AioSession | None = None,
    health: Health | None = None,
) -> WorkerResult:
    """Consume ``config.kinesis.stream`` with the native driver until ``stop`` is set (or idle exit).

    Args:
        config: ``kinesis.*`` and ``lease.*`` settings, ``config.lease_table`` and ``config.worker_id``.
        factory: builds one ``ShardProcessor`` per shard this worker comes to hold.
        metrics: where leases held, checkpoints, checkpoint age and MillisBehindLatest are recorded.
        stop: set it to stop gracefully (the ``run`` command sets it on SIGTERM/SIGINT).
        session: an aiobotocore session (clients and credentials), a new one by default.
        health: what ``/readyz`` answers (reads, lease renewals, calls in flight), a new one by default.

    Returns:
        Counts of records handed over, checkpoints and shards ended; ``failed`` if a shard failed.
    """
    return await Worker(config, factory, metrics=metrics, stop=stop, session=session, health=health).run()
