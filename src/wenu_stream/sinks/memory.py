"""In-memory fakes of the ports, shipped for tests and for wiring checks (like quix's ListSink)."""

from __future__ import annotations

from collections.abc import Sequence

from wenu_stream.ops.rebuild import RebuildMarker
from wenu_stream.pipeline import BatchOutcome, DeadLetter


class InMemoryDeadLetterStore:
    """Dead letters keyed by (shard, position): a replay overwrites, as in S3."""

    def __init__(self) -> None:
        self.letters: dict[tuple[str, int, int], DeadLetter] = {}
        self.fail_next = 0

    async def put(self, shard_id: str, letters: Sequence[DeadLetter]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("injected dead-letter store outage")
        for letter in letters:
            self.letters[(shard_id, letter.position.sequence, letter.position.sub)] = letter


class InMemoryStateStore:
    """Shard state blobs keyed by (shard, sequence)."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str], bytes] = {}
        self.markers: dict[str, RebuildMarker] = {}

    async def save(self, shard_id: str, sequence: str, blob: bytes) -> None:
        self.states[(shard_id, sequence)] = blob

    async def load(self, shard_id: str, sequence: str) -> bytes | None:
        return self.states.get((shard_id, sequence))

    async def rebuild_marker(self, shard_id: str) -> RebuildMarker | None:
        return self.markers.get(shard_id)


class InMemoryBatchSink:
    """Records every batch it is given; can be told to fail."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.pending: list[tuple[str, BatchOutcome]] = []
        self.batches: list[tuple[str, BatchOutcome]] = []  # durable (flushed)
        self.fail_next = 0
        self.generations: dict[str, int] = {}

    def rebuild(self, shard_id: str, generation: int) -> None:
        self.generations[shard_id] = generation

    async def write(self, shard_id: str, outcome: BatchOutcome) -> None:
        self.pending.append((shard_id, outcome))

    async def flush(self) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError(f"injected {self.name} outage")
        self.batches.extend(self.pending)
        self.pending.clear()
