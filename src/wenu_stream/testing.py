"""In-memory fakes of the ports, shipped for tests and for wiring checks (like quix's ListSink)."""

from __future__ import annotations

from collections.abc import Sequence

from wenu_stream.ingest.batch import BatchOutcome, DeadLetter
from wenu_stream.ingest.rebuild import RebuildMarker
from wenu_stream.ports import SinkBase
from wenu_stream.stats import items
from wenu_stream.stats.items import Item


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


class InMemoryBatchSink(SinkBase):
    """Records every batch it is given; can be told to fail (``has_pending`` is settable)."""

    has_pending: bool = False  # a plain attribute here (settable by tests), a property in SinkBase

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


class InMemoryStatsStore:
    """``StatsStore`` in a dict, with DynamoDB's conditions; for fast tests of the sink."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, int], Item] = {}

    async def get_states(self, series: Sequence[str]) -> dict[str, Item]:
        found = (self.items.get((items.state_pk(s), 0)) for s in series)
        return {i["series"]["S"]: i for i in found if i is not None}

    async def get_windows(self, keys: Sequence[tuple[str, str, int]]) -> list[Item]:
        found = (self.items.get((items.window_pk(s, w), start)) for s, w, start in keys)
        return [i for i in found if i is not None]

    async def put_state(self, item: Item, base: str | None) -> str | None:
        old = self.items.get(_key(item))
        stored = None if old is None else old["fence"]["S"]
        if stored != base:
            return stored or ""
        self.items[_key(item)] = item
        return None

    async def put_window(self, item: Item) -> bool:
        old = self.items.get(_key(item))
        new = item["fence"]["S"]
        if (
            old is not None
            and old["fence"]["S"].split("/")[0] == new.split("/")[0]
            and old["fence"]["S"] >= new
        ):
            return False
        self.items[_key(item)] = item
        return True


def _key(item: Item) -> tuple[str, int]:
    return item["pk"]["S"], int(item["sk"]["N"])
