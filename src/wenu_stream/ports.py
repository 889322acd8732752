"""Ports: what the applications and the drivers need from the outside world, by role.

Every port is a ``Protocol`` here; adapters live in ``aws/`` (and
``catalog.store``, ``warehouse.staging``), in-memory fakes of every port in
``testing``. Sinks derive from ``SinkBase``, whose optional hooks are no-ops, so
callers invoke them without probing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from wenu_stream.model import KinesisRecord

if TYPE_CHECKING:
    from wenu_stream.alarms.durable import LastTransition, LedgerEntry, ShardClock
    from wenu_stream.alarms.engine import InstanceState, Transition
    from wenu_stream.alarms.rules import AlarmRule
    from wenu_stream.alarms.shard import InstanceKey
    from wenu_stream.ingest.batch import BatchOutcome, DeadLetter
    from wenu_stream.ingest.rebuild import RebuildMarker
    from wenu_stream.model import HashRange, Position, SeriesReading, Unmapped
    from wenu_stream.stats.items import Item


class ShardProcessor(Protocol):
    """What a driver (native asyncio worker or the KCL adapter) drives, one per shard.

    The driver calls ``initialize`` once (a child shard that starts without a
    checkpoint gets its parents and its hash-key range: it takes their state
    over), then ``process`` per batch. ``process``
    returns True when every effect up to the batch's last record is durable: the
    driver then checkpoints that record. It returns False while sinks still
    coalesce writes in memory (checkpoints are throttled, and never pass a
    record whose effects are not durable). ``flush`` makes everything durable
    now and returns the sequence number to checkpoint (None: nothing new), for a
    graceful shutdown or a lease handoff. If ``process`` or ``flush`` raises,
    the driver stops the shard without checkpointing and the records replay.
    """

    async def initialize(
        self,
        shard_id: str,
        checkpoint: str | None,
        parent_shard_ids: Sequence[str],
        hash_range: HashRange | None = None,
    ) -> None: ...

    async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> bool: ...

    async def flush(self) -> str | None: ...

    @property
    def settled(self) -> bool:
        """False while a sink waits on another process for an effect (``SinkBase.waiting``)."""
        ...

    async def shard_ended(self) -> None: ...

    async def close(self) -> None: ...


class ShardProcessorFactory(Protocol):
    def __call__(self, shard_id: str) -> ShardProcessor: ...


class DeadLetterStore(Protocol):
    """Keeps rejected records with their reason. ``put`` returns once every letter is durable; idempotent."""

    async def put(self, shard_id: str, letters: Sequence[DeadLetter]) -> None: ...


class StateStore(Protocol):
    """Per-shard processing state (duplicate detector, totals) saved at every checkpoint position.

    ``save`` keys the state by the sequence number it is valid at; ``load``
    returns the state saved at exactly the checkpoint a shard resumes from, so a
    replay after a crash starts from the state as of that checkpoint.
    """

    async def save(self, shard_id: str, sequence: str, blob: bytes) -> None: ...

    async def load(self, shard_id: str, sequence: str) -> bytes | None: ...

    async def rebuild_marker(self, shard_id: str) -> RebuildMarker | None:
        """The shard's rebuild marker (``ingest.rebuild``), or None: how a reset asks the replay to recompute."""
        ...


class SinkBase:
    """Optional hooks of a sink, as no-ops: a sink overrides the ones it needs (like quix's ``BaseSink``).

    The processor and ``EnrichingSink`` call every hook on every sink, so a
    misspelt override fails the type check instead of being skipped.
    """

    name: str = ""

    @property
    def has_pending(self) -> bool:
        """True when an effect should not wait for the commit interval (an alarm notification)."""
        return False

    @property
    def waiting(self) -> bool:
        """True while an effect waits on another process (a notification a killed worker had claimed, until
        its claim expires): the shard is not settled, and an idle exit waits for it."""
        return False

    def rebuild(self, shard_id: str, generation: int) -> None:
        """The shard's rebuild generation (``ingest.rebuild``; 0 without a marker), before its first write."""

    def release(self, shard_id: str) -> None:
        """A shard starts or stops here: forget what is cached for it (it reloads from the store)."""

    async def idle(self, shard_id: str, now_ms: int) -> Any:
        """An idle tick of a shard with no records (wall clock, epoch ms)."""
        return None

    async def settle(self, shard_id: str) -> None:
        """The shard stops here (a graceful stop, a handover, its end) after its last commit: make what the
        sink deferred visible (open stats windows to their items, alarm instances to theirs)."""

    async def resume(self, shard_id: str, after: Position) -> None:
        """The shard resumes after ``after`` (its checkpoint), before its first write: effects a previous
        owner made durable past it, and never checkpointed, are about to be made again by the replay."""

    async def inherit(self, shard_id: str, parents: Sequence[str], hash_range: HashRange | None) -> None:
        """A child shard starts (no checkpoint yet) after its ``parents`` ended (a split: one parent, a merge:
        two), before its first write: take over what the sink keeps per shard and what the parents left
        (``hash_range``: the child's, for a split's share; None if unknown). Called again if the child
        restarts before its first checkpoint: idempotent."""


class BatchSink(Protocol):
    """An application stage with durable effects (stats, staging, alarm state). Idempotent under replay.

    ``write`` may keep effects in memory (coalescing, say, one write per stats
    window per flush instead of one per reading); ``flush`` makes everything
    written so far durable. The processor checkpoints only after ``flush``.

    A sink that keeps derived results may also have ``rebuild(shard_id,
    generation)``: the processor calls it before the shard's first ``write``
    with the shard's rebuild generation (0 without a marker, see
    ``ingest.rebuild``); the sink recomputes results of older generations.
    """

    name: str

    async def write(self, shard_id: str, outcome: BatchOutcome) -> None: ...

    async def flush(self) -> None: ...

    @property
    def has_pending(self) -> bool: ...

    @property
    def waiting(self) -> bool: ...

    def rebuild(self, shard_id: str, generation: int) -> None: ...

    def release(self, shard_id: str) -> None: ...

    async def idle(self, shard_id: str, now_ms: int) -> Any: ...

    async def settle(self, shard_id: str) -> None: ...

    async def resume(self, shard_id: str, after: Position) -> None: ...

    async def inherit(self, shard_id: str, parents: Sequence[str], hash_range: HashRange | None) -> None: ...


class ReadingSink(Protocol):
    """A stage fed with enriched readings. ``write_readings`` may buffer; ``flush`` makes durable. Idempotent.

    Hooks as ``BatchSink`` (inherit ``SinkBase`` for the no-op defaults).
    """

    name: str

    async def write_readings(self, shard_id: str, readings: Sequence[SeriesReading]) -> Any: ...

    async def flush(self) -> None: ...

    @property
    def has_pending(self) -> bool: ...

    @property
    def waiting(self) -> bool: ...

    def rebuild(self, shard_id: str, generation: int) -> None: ...

    def release(self, shard_id: str) -> None: ...

    async def idle(self, shard_id: str, now_ms: int) -> Any: ...

    async def settle(self, shard_id: str) -> None: ...

    async def resume(self, shard_id: str, after: Position) -> None: ...

    async def inherit(self, shard_id: str, parents: Sequence[str], hash_range: HashRange | None) -> None: ...


class UnmappedStore(Protocol):
    """Keeps readings the catalog does not map (quarantine) until it does."""

    def add(self, shard_id: str, readings: Sequence[Unmapped]) -> None: ...

    async def flush(self) -> None: ...


class StatsStore(Protocol):
    """The storage a stats sink needs (DynamoDB, or ``testing.InMemoryStatsStore``); layout in ``stats.items``."""

    async def get_states(self, series: Sequence[str]) -> dict[str, Item]: ...

    async def get_windows(self, keys: Sequence[tuple[str, str, int]]) -> list[Item]: ...

    async def put_state(self, item: Item, base: str | None) -> str | None:
        """Put if the stored fence is ``base`` (None: no item); else return the stored fence ("" if none)."""
        ...

    async def put_window(self, item: Item) -> bool:
        """Put if the stored fence is older (or from another shard); False if it was as new or newer."""
        ...

    async def unpublished(self, shard_id: str) -> list[str]:
        """Series whose state item holds windows a commit of ``shard_id`` left unwritten (``unpublished_shard``)."""
        ...


RulesSource = Callable[[], "Sequence[AlarmRule]"]


class AlarmStateStore(Protocol):
    """Durable alarm instances, version-fenced (``StaleAlarmState`` when another worker is ahead), and shard clocks."""

    async def load_shard(
        self, shard_id: str, *, claim: bool = True
    ) -> tuple[list[InstanceState], ShardClock | None]:
        """Every stored instance of the shard and its clock; ``claim``: this worker commits for it from now
        on (False: read an ended parent's)."""
        ...

    async def load_instances(self, keys: Sequence[InstanceKey]) -> list[InstanceState]: ...

    async def remove(self, keys: Iterable[InstanceKey]) -> None: ...

    async def save(
        self,
        shard_id: str,
        states: Iterable[InstanceState],
        *,
        severity: Callable[[str], str],
        last: Callable[[InstanceKey], LastTransition | None],
        now_ms: int,
    ) -> int: ...

    async def save_clock(self, shard_id: str, clock: ShardClock) -> None: ...

    async def settle(self, shard_id: str, *, severity: Callable[[str], str], now_ms: int) -> None: ...


class Notifier(Protocol):
    """Exactly one notification per transition: a ledger entry first (``record``), then ``publish``.

    ``publish`` and ``recover`` (which re-publishes what a previous owner of
    the shard recorded but did not publish) return the entries another process
    is publishing (a lease changing hands): the caller offers them again later.
    """

    async def record(self, shard_id: str, transitions: Sequence[Transition]) -> list[LedgerEntry]: ...

    async def publish(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]: ...

    async def recover(self, shard_id: str) -> list[LedgerEntry]: ...
