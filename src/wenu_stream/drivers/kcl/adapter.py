"""The KCL MultiLangDaemon driver: amazon-kclpy v3 messages <-> a ``ShardProcessor``.

The daemon starts one Python process per shard and talks to it over
stdin/stdout (stdout is the protocol: nothing else may be written there).
Every callback follows the same shape: translate, call the shard processor
on the process's one ``asyncio.Runner``, checkpoint.

Failure rules (kclpy swallows exceptions that escape a callback, which would
silently skip the batch, so none may escape):

1. ``process`` raising (a sink stayed down, a bug): log, do NOT checkpoint and
   exit the process on purpose (``EXIT_PROCESSING_FAILED``). The daemon exits
   with its child, ECS restarts the task and the batch replays from the last
   checkpoint.
2. A checkpoint refused with ``ShutdownException``/``InvalidStateException``:
   the lease is gone; stop quietly and wait for ``lease_lost``.
3. ``ThrottlingException``/``KinesisClientLibDependencyException``: retried with
   backoff; if it persists, the next checkpoint covers the records.
4. The daemon is gone (its stop grace, ``shutdownGraceMillis``, ran out while a
   batch could not become durable, e.g. S3 black-holed): a watcher thread sees
   the process re-parented and exits at once without a checkpoint
   (``EXIT_PROCESSING_FAILED``): the batch replays on the next owner, and no
   shard process outlives its daemon still retrying.

Parent shards: the daemon's ``initialize`` message names the shard and its
checkpoint but not the shard's parents, although KCL starts a child only after
its parents reached SHARD_END. A shard that starts fresh (no sequence-number
checkpoint) therefore looks its parents up with ``ListShards``
(``ParentShardId``/``AdjacentParentShardId``) and its hash-key range, so that
it starts from the parents' final state (duplicate memory; the alarm instances
in its range, shard clocks and pending notifications), as on the native driver
(whose lease rows carry both). A shard resuming from a checkpoint looks up its
hash range only (a failed lookup leaves it without one): the daemon does not
always drop a KPL aggregate holding records of another shard (it cannot for a
shard missing from its cached shard list, typically a fresh child), so the
processor does (``ingest.batch``). The lineage is read from Kinesis rather than
recorded by the parent at SHARD_END: the daemon's ``shardEnded`` message does
not name the children, and ListShards answers for every shard still in the
stream's retention.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import msgspec
from amazon_kclpy import kcl  # type: ignore[import-untyped]  # no stubs shipped
from amazon_kclpy.messages import (  # type: ignore[import-untyped]
    InitializeInput,
    LeaseLostInput,
    ProcessRecordsInput,
    Record,
    ShardEndedInput,
    ShutdownRequestedInput,
)
from amazon_kclpy.v3.processor import RecordProcessorBase  # type: ignore[import-untyped]

from wenu_stream.backoff import Backoff
from wenu_stream.drivers.kcl.properties import check_properties, render_properties
from wenu_stream.health import Health
from wenu_stream.log import configure_logging, get_logger
from wenu_stream.metrics import CheckpointClock, Metrics
from wenu_stream.model import HashRange, KinesisRecord
from wenu_stream.ports import ShardProcessor

if TYPE_CHECKING:
    from mypy_boto3_kinesis.client import KinesisClient
    from mypy_boto3_kinesis.type_defs import ListShardsInputTypeDef

__all__ = [
    "EXIT_PROCESSING_FAILED",
    "WenuRecordProcessor",
    "check_properties",
    "kinesis_parent_lookup",
    "main",
    "render_properties",
    "to_kinesis_record",
]

EXIT_PROCESSING_FAILED = 70  # EX_SOFTWARE: the batch was not checkpointed and will replay
EXIT_CONFIG = 2
_LEASE_GONE = frozenset({"ShutdownException", "InvalidStateException"})
_RETRYABLE = frozenset({"ThrottlingException", "KinesisClientLibDependencyException"})

T = TypeVar("T")
Factory = Callable[[str], ShardProcessor]


class Lineage(msgspec.Struct, frozen=True):
    """A shard's parents and its hash-key range, as ListShards tells them."""

    parents: tuple[str, ...]
    hash_range: HashRange | None = None


# shard id -> its parent shard ids, or its whole lineage (blocking I/O allowed)
ParentLookup = Callable[[str], "Sequence[str] | Lineage"]


def to_kinesis_record(record: Record) -> KinesisRecord:
    """Translate a kclpy record (already deaggregated by the daemon) into our ``KinesisRecord``."""
    return KinesisRecord(
        sequence_number=record.sequence_number,
        data=record.binary_data,
        partition_key=record.partition_key,
        approximate_arrival_timestamp=record.timestamp_millis / 1000,
        sub_sequence_number=int(record.sub_sequence_number or 0),
    )


def _checkpoint_string(sequence: str | None, sub: int | None) -> str | None:
    """The daemon's resume point in the ``"<seq>[:<sub>]"`` form ``ShardProcessor.initialize`` takes."""
    if sequence is None or not sequence.isdigit() or not sub:
        return sequence
    return f"{sequence}:{sub}"


def kinesis_parent_lookup(stream: str, client: KinesisClient | None = None) -> ParentLookup:
    """A ``ParentLookup`` over ``ListShards`` of ``stream`` (client built by boto3 from AWS_* settings if not given)."""

    def parents(shard_id: str) -> Lineage:
        kinesis = client
        if kinesis is None:
            import boto3

            from wenu_stream.aws.common import sync_client_config

            kinesis = boto3.client("kinesis", config=sync_client_config())
        request: ListShardsInputTypeDef = {"StreamName": stream}
        while True:
            page = kinesis.list_shards(**request)
            for shard in page.get("Shards", []):
                if shard["ShardId"] == shard_id:
                    keys = shard["HashKeyRange"]
                    return Lineage(
                        tuple(
                            p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p
                        ),
                        HashRange(int(keys["StartingHashKey"]), int(keys["EndingHashKey"])),
                    )
            if not page.get("NextToken"):
                return Lineage(())  # trimmed from the stream: nothing to inherit
            request = {"NextToken": page["NextToken"]}  # AWS rejects StreamName together with NextToken

    return parents


def _fresh(checkpoint: str | None) -> bool:
    """True when the shard starts without a sequence-number checkpoint (TRIM_HORIZON, LATEST, AT_TIMESTAMP)."""
    return checkpoint is None or not checkpoint.split(":", 1)[0].isdigit()


def _exit_now(code: int) -> NoReturn:
    """Leave at once: no atexit hooks or client finalizers that could block (the batch replays anyway)."""
    try:
        sys.stderr.flush()
    except (OSError, ValueError):  # the daemon that read our stderr is gone: nothing left to say it to
        pass
    os._exit(code)


class WenuRecordProcessor(RecordProcessorBase):  # type: ignore[misc]
    """One shard's amazon-kclpy v3 record processor, wrapping a driver-agnostic ``ShardProcessor``.

    Args:
        factory: builds the shard processor for a shard id.
        runner: the process's event loop; built here if not given (one per process).
        exit_process: called with an exit code to stop the process on purpose (tests pass ``sys.exit``).
        sleep: used between checkpoint retries.
        checkpoint_attempts: tries per checkpoint when the daemon reports a retryable error.
        parents: looks a fresh shard's parents up (see the module docstring); None: no lookup.
        metrics: the driver's metrics on this path (leases held, checkpoints, checkpoint age), labelled ``app``.
        tick_s: how often a background thread refreshes the checkpoint age (it grows while a callback hangs)
            and the readiness gauge.
        health: this process's readiness (sinks, calls in flight); the ticker publishes it as
            ``wenu_unready_until_seconds`` (now + 3 ticks while not ready), which the exporter's ``/readyz``
            reads: a process that dies stops renewing it, so its last value expires.
    """

    def __init__(
        self,
        factory: Factory,
        *,
        runner: asyncio.Runner | None = None,
        exit_process: Callable[[int], Any] = _exit_now,
        sleep: Callable[[float], Any] = time.sleep,
        checkpoint_attempts: int = 5,
        parents: ParentLookup | None = None,
        metrics: Metrics | None = None,
        app: str = "",
        tick_s: float = 1.0,
        health: Health | None = None,
    ) -> None:
        self._factory = factory
        self._health = health
        self._parents = parents
        self._runner = runner or asyncio.Runner()
        self._exit = exit_process
        self._sleep = sleep
        self._attempts = checkpoint_attempts
        self._processor: ShardProcessor | None = None
        self._last: tuple[str, int] | None = None  # last record handed to process()
        self._lease_gone = False
        self._log: Any = get_logger("wenu.kcl")
        self._metrics = metrics
        self._app = app
        self._shard_id = ""
        self._clock = CheckpointClock()
        self._tick_s = tick_s
        self._ticking = threading.Event()  # set: the age refresher stops

    @property
    def runner(self) -> asyncio.Runner:
        return self._runner

    def initialize(self, initialize_input: InitializeInput) -> None:
        """Build the shard processor and load its state at the daemon's checkpoint (or its parents' final state)."""
        shard_id = initialize_input.shard_id
        self._log = self._log.bind(shard_id=shard_id)
        checkpoint = _checkpoint_string(
            initialize_input.sequence_number, initialize_input.sub_sequence_number
        )
        self._call("initialize_failed", lambda: self._initialize(shard_id, checkpoint))
        self._shard_id = shard_id
        if self._metrics is not None:
            self._metrics.leases_held.labels(self._app).set(
                1
            )  # one shard per process: the exporter sums them
            self._observe_age()
            threading.Thread(target=self._refresh_age, name="checkpoint-age", daemon=True).start()

    async def _initialize(self, shard_id: str, checkpoint: str | None) -> None:
        parents: Sequence[str] = ()
        hash_range: HashRange | None = None
        if self._parents is not None:
            found = await self._lineage(shard_id, required=_fresh(checkpoint))
            parents, hash_range = (
                (found.parents, found.hash_range) if isinstance(found, Lineage) else (found, None)
            )
            parents = parents if _fresh(checkpoint) else ()  # a checkpointed shard has its own state
        await self._started(shard_id).initialize(shard_id, checkpoint, parents, hash_range)

    async def _lineage(self, shard_id: str, *, required: bool) -> Sequence[str] | Lineage:
        """The shard's lineage; for a shard resuming from a checkpoint only its hash range matters (aggregates
        of other shards are dropped), so a failed lookup leaves it without one instead of stopping it."""
        assert self._parents is not None
        try:
            return await asyncio.to_thread(self._parents, shard_id)
        except Exception as exc:
            if required:
                raise
            self._log.warning(
                "shard_lookup_failed", error=repr(exc), effect="misrouted aggregates not dropped"
            )
            return ()

    def process_records(self, process_records_input: ProcessRecordsInput) -> None:
        """Translate, process, and checkpoint the last record once the processor says it is durable."""
        if self._lease_gone:
            return
        records = [to_kinesis_record(r) for r in process_records_input.records]
        behind = process_records_input.millis_behind_latest
        if records:
            self._clock.handed()
        durable = self._call("process_failed", lambda: self._require().process(records, behind))
        if records:
            self._last = (records[-1].sequence_number, records[-1].sub_sequence_number)
        if durable and self._last is not None:
            self._checkpoint(process_records_input.checkpointer, *self._last)
        self._observe_age()

    def lease_lost(self, lease_lost_input: LeaseLostInput) -> None:
        """Another worker owns the shard now: drop what is not committed, no checkpoint is possible."""
        self._lease_gone = True
        self._close()
        self._log.info("lease_lost")

    def shard_ended(self, shard_ended_input: ShardEndedInput) -> None:
        """Commit everything, save the final state, then checkpoint SHARD_END so the children may start."""
        self._call("shard_end_failed", lambda: self._require().shard_ended())
        self._checkpoint(shard_ended_input.checkpointer, None, None)
        self._close()

    def shutdown_requested(self, shutdown_requested_input: ShutdownRequestedInput) -> None:
        """The worker is shutting down gracefully: make everything durable and checkpoint it."""
        if self._lease_gone or self._processor is None:
            return
        sequence = self._call("flush_failed", lambda: self._require().flush())
        if sequence is not None:
            sub = self._last[1] if self._last and self._last[0] == sequence else None
            self._checkpoint(shutdown_requested_input.checkpointer, sequence, sub)
        self._retire_metrics()  # the worker gives the lease up (lease_lost or shard_ended may still follow)

    def _started(self, shard_id: str) -> ShardProcessor:
        self._processor = self._factory(shard_id)
        return self._processor

    def _require(self) -> ShardProcessor:
        if self._processor is None:
            raise RuntimeError("the daemon sent a message before initialize")
        return self._processor

    def _call(self, event: str, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a processor coroutine on the runner; any exception stops the process (module docstring, 1.)."""
        try:
            return self._runner.run(make())
        except Exception:  # noqa: BLE001 - kclpy would swallow it and skip the batch
            self._die(event)

    def _die(self, event: str) -> NoReturn:
        self._log.exception(
            event,
            action="exit without checkpoint; the daemon stops and the batch replays",
            exit_code=EXIT_PROCESSING_FAILED,
        )
        self._exit(EXIT_PROCESSING_FAILED)
        raise SystemExit(EXIT_PROCESSING_FAILED)  # only reached when an injected exit() returns

    def _checkpoint(self, checkpointer: Any, sequence: str | None, sub: int | None) -> bool:
        """Checkpoint at ``(sequence, sub)`` (None: the daemon's end of shard), retrying throttling."""
        backoff = Backoff(base=0.2, cap=5.0)
        for attempt in range(1, self._attempts + 1):
            try:
                checkpointer.checkpoint(sequence, sub)
            except kcl.CheckpointError as error:
                if error.value in _LEASE_GONE:
                    self._lease_gone = True
                    self._log.info("checkpoint_refused", error=error.value, sequence=sequence)
                    return False
                if error.value not in _RETRYABLE:
                    self._die("checkpoint_failed")
                self._log.warning("checkpoint_retry", error=error.value, attempt=attempt, sequence=sequence)
                if attempt < self._attempts:
                    self._sleep(backoff.next_delay())
                continue
            self._log.debug("checkpointed", sequence=sequence, sub=sub)
            if sequence is None or (sequence, sub) == self._last:
                self._clock.checkpointed()
            if self._metrics is not None:
                self._metrics.checkpoints.labels(self._app).inc()
            return True
        self._log.warning("checkpoint_skipped", sequence=sequence, reason="the next checkpoint covers it")
        return False

    def _close(self) -> None:
        processor, self._processor = self._processor, None
        if processor is not None:
            self._call("close_failed", processor.close)
        self._retire_metrics()

    def _retire_metrics(self) -> None:
        self._ticking.set()
        if (
            self._metrics is not None and self._shard_id
        ):  # per-process files: leave zeros, not the last values
            self._metrics.leases_held.labels(self._app).set(0)
            self._metrics.checkpoint_age.labels(self._app, self._shard_id).set(0)
            self._metrics.unready_until.labels(self._app, self._shard_id).set(0)

    def _observe_age(self) -> None:
        if self._metrics is not None and self._shard_id and not self._ticking.is_set():
            self._metrics.checkpoint_age.labels(self._app, self._shard_id).set(self._clock.age())
            if self._health is not None:
                ready, _ = self._health.readiness()
                until = 0.0 if ready else time.time() + 3 * self._tick_s
                self._metrics.unready_until.labels(self._app, self._shard_id).set(until)

    def _refresh_age(self) -> None:
        """Between callbacks too: a callback that hangs (a sink that never answers) must not freeze the age."""
        while not self._ticking.wait(self._tick_s):
            self._observe_age()


def watch_parent(exit_process: Callable[[int], Any], every_s: float = 1.0) -> threading.Thread:
    """Exit (failure rule 4) as soon as this process's parent, the daemon, is gone; a daemon thread."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        try:  # stderr may be a pipe to the daemon that is gone
            get_logger("wenu.kcl").warning(
                "daemon_gone", effect="exiting without a checkpoint; the batch replays on the next owner"
            )
        except (OSError, ValueError):
            pass
        exit_process(EXIT_PROCESSING_FAILED)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def run_process(
    factory: Factory,
    *,
    input_file: Any = None,
    output_file: Any = None,
    error_file: Any = None,
    exit_process: Callable[[int], Any] = _exit_now,
    parents: ParentLookup | None = None,
    metrics: Metrics | None = None,
    app: str = "",
    close: Callable[[], Coroutine[Any, Any, None]] | None = None,
    health: Health | None = None,
) -> None:
    """Serve the daemon's protocol until it closes stdin, then close the clients (``close``) and the loop.

    The daemon closes stdin once the shard's last message (lease lost, shard ended) is answered; the
    process then ends on its own with exit code 0, which the daemon's graceful shutdown waits for.
    """
    processor = WenuRecordProcessor(
        factory, exit_process=exit_process, parents=parents, metrics=metrics, app=app, health=health
    )
    watch_parent(exit_process)
    try:
        kcl.KCLProcess(
            processor,
            input_file=input_file or sys.stdin,
            output_file=output_file or sys.stdout,
            error_file=error_file or sys.stderr,
        ).run()
    finally:
        try:
            if (
                close is not None
            ):  # the SDK clients' sessions: closed here, never left to the garbage collector
                processor.runner.run(close())
        finally:
            processor.runner.close()


def main(
    app: str,
    factory: Factory | None = None,
    environ: Any = None,
    build: Callable[[Any], tuple[Factory, Metrics, Callable[[], Coroutine[Any, Any, None]], Health]]
    | None = None,
) -> None:
    """Serve the protocol for ``app``: configure logging, load the config, then run the processors.

    ``consumers/<app>.py`` reach this through ``bootstrap.kcl_main``, which
    passes ``build`` (config -> processor factory and metrics); tests pass a
    ``factory`` directly. ``WENU_KINESIS_STREAM`` must name the daemon's
    ``streamName``: fresh shards look their parents up in it.

    A configuration error exits with code 2 before a single protocol line is
    read, which stops the daemon at start-up with the message on stderr.
    """
    from wenu_stream.config import load_config
    from wenu_stream.errors import ConfigError

    configure_logging()
    try:
        config = load_config(environ, {"app": app})
    except ConfigError as error:
        get_logger("wenu.kcl").error("config_invalid", error=str(error))
        sys.stderr.flush()
        raise SystemExit(EXIT_CONFIG) from None
    configure_logging(config.log_level)
    metrics, close, health = None, None, None
    if factory is None:
        if build is None:
            raise TypeError("main() needs a processor factory or a build function")
        factory, metrics, close, health = build(config)
    run_process(
        factory,
        parents=kinesis_parent_lookup(config.kinesis.stream),
        metrics=metrics,
        app=config.app,
        close=close,
        health=health,
    )
