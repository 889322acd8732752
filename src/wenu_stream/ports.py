"""Ports: what the pure core and the drivers need from the outside world, by role.

Adapters live in ``sinks/`` (AWS) and fakes in ``sinks/memory.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from wenu_stream.model import KinesisRecord


class Clock(Protocol):
    """Epoch milliseconds. Injected so pure code never reads the wall clock."""

    def __call__(self) -> int: ...


class ShardProcessor(Protocol):
    """What a driver (native asyncio worker or the KCL adapter) drives, one per shard.

    The driver calls ``initialize`` once, then ``process`` per batch, and
    checkpoints at the batch's last record only after ``process`` returned:
    ``process`` returns when every effect of the batch is durable. If it raises,
    the driver stops this shard without checkpointing and the batch replays.
    """

    async def initialize(self, shard_id: str, checkpoint: str | None, parent_shard_ids: Sequence[str]) -> None: ...

    async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> None: ...

    async def shard_ended(self) -> None: ...

    async def close(self) -> None: ...


class ShardProcessorFactory(Protocol):
    def __call__(self, shard_id: str) -> ShardProcessor: ...
