"""Ports: what the pure core and the drivers need from the outside world, by role.

Adapters live in ``sinks/`` (AWS) and fakes in ``sinks/memory.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from wenu_stream.model import KinesisRecord

if TYPE_CHECKING:
    from wenu_stream.ops.rebuild import RebuildMarker
    from wenu_stream.pipeline import BatchOutcome, DeadLetter


class Clock(Protocol):
    """Epoch milliseconds. Injected so pure code never reads the wall clock."""

    def __call__(self) -> int: ...


class ShardProcessor(Protocol):
    """What a driver (native asyncio worker or the KCL adapter) drives, one per shard.

    The driver calls ``initialize`` once, then ``process`` per batch. ``process``
    returns True when every effect up to the batch's last record is durable: the
    driver then checkpoints that record. It returns False while sinks still
    coalesce writes in memory (checkpoints are throttled, and never pass a
    record whose effects are not durable). ``flush`` makes everything durable
    now and returns the sequence number to checkpoint (None: nothing new), for a
    graceful shutdown or a lease handoff. If ``process`` or ``flush`` raises,
    the driver stops the shard without checkpointing and the records replay.
    """

    async def initialize(self, shard_id: str, checkpoint: str | None, parent_shard_ids: Sequence[str]) -> None: ...

    async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> bool: ...

    async def flush(self) -> str | None: ...

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
        """The shard's rebuild marker (``ops.rebuild``), or None: how a reset asks the replay to recompute."""
        ...


class BatchSink(Protocol):
    """An application stage with durable effects (stats, staging, alarm state). Idempotent under replay.

    ``write`` may keep effects in memory (coalescing, say, one write per stats
    window per flush instead of one per reading); ``flush`` makes everything
    written so far durable. The processor checkpoints only after ``flush``.

    A sink that keeps derived results may also have ``rebuild(shard_id,
    generation)``: the processor calls it before the shard's first ``write``
    with the shard's rebuild generation (0 without a marker, see
    ``ops.rebuild``); the sink recomputes results of older generations.
    """

    name: str

    async def write(self, shard_id: str, outcome: BatchOutcome) -> None: ...

    async def flush(self) -> None: ...
