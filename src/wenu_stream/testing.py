"""In-memory fakes of the ports, shipped for tests and for wiring checks (like quix's ListSink), and a settable clock.

The fakes keep the adapters' semantics (conditions, fences, the ledger), so a
use case tested on them behaves the same on DynamoDB, S3 and SNS. Faults are
injected per operation (``fail_next["<operation>"] = n``: the next ``n`` calls
raise ``ConnectionError``), and a shared ``journal`` records the operations in
the order they ran.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import msgspec

from wenu_stream.alarms.durable import PENDING, PUBLISHED, LastTransition, LedgerEntry, ShardClock, sort_key
from wenu_stream.alarms.engine import InstanceState, Transition, notification
from wenu_stream.alarms.shard import InstanceKey
from wenu_stream.errors import StaleAlarmState
from wenu_stream.ingest.batch import BatchOutcome, DeadLetter
from wenu_stream.ingest.rebuild import RebuildMarker
from wenu_stream.model import Position
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
    """Records every batch it is given and every ``resume``; can be told to fail (``has_pending`` is settable)."""

    has_pending: bool = False  # a plain attribute here (settable by tests), a property in SinkBase

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.pending: list[tuple[str, BatchOutcome]] = []
        self.batches: list[tuple[str, BatchOutcome]] = []  # durable (flushed)
        self.fail_next = 0
        self.generations: dict[str, int] = {}
        self.resumes: list[tuple[str, Position]] = []

    def rebuild(self, shard_id: str, generation: int) -> None:
        self.generations[shard_id] = generation

    async def resume(self, shard_id: str, after: Position) -> None:
        self.resumes.append((shard_id, after))

    def release(self, shard_id: str) -> None:
        self.pending = [(shard, outcome) for shard, outcome in self.pending if shard != shard_id]

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

    async def unpublished(self, shard_id: str) -> list[str]:
        return sorted(
            i["series"]["S"]
            for i in self.items.values()
            if i.get("unpublished_shard", {}).get("S") == shard_id and "state" in i
        )


def _key(item: Item) -> tuple[str, int]:
    return item["pk"]["S"], int(item["sk"]["N"])


class SettableClock:
    """A clock tests move by hand (like bytewax's ``TimeTestingGetter``).

    Call it for epoch milliseconds (``ports.Clock``); pass ``clock.seconds`` where
    float seconds are wanted (a monotonic clock, a wall clock in seconds) and
    ``clock.sleep`` where a sleep is injected: it records the delay and moves the
    time on by it.
    """

    def __init__(self, ms: int = 1_700_000_000_000) -> None:
        self.now = ms / 1000  # seconds
        self.sleeps: list[float] = []

    def __call__(self) -> int:
        return round(self.now * 1000)

    @property
    def ms(self) -> int:
        return self()

    @ms.setter
    def ms(self, value: int) -> None:
        self.now = value / 1000

    def seconds(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


class _Faults:
    """Per-operation fault injection and the shared journal of the alarm fakes."""

    def __init__(self, journal: list[str] | None) -> None:
        self.journal = journal if journal is not None else []
        self.fail_next: Counter[str] = Counter()

    def _enter(self, operation: str) -> None:
        if self.fail_next[operation] > 0:
            self.fail_next[operation] -= 1
            raise ConnectionError(f"injected outage at {operation}")
        self.journal.append(operation)


class InMemoryAlarmStateStore(_Faults):
    """``AlarmStateStore`` in dicts, fenced by version like ``aws.alarm_state``.

    A state is stored only over a lower version; an equal stored version counts as
    already stored; a higher one raises :class:`StaleAlarmState`. Operations:
    ``load_shard``, ``load_instances``, ``remove``, ``save``, ``save_clock``.
    """

    def __init__(self, journal: list[str] | None = None) -> None:
        super().__init__(journal)
        self.instances: dict[InstanceKey, InstanceState] = {}
        self.owner: dict[InstanceKey, str] = {}  # the shard that saved it last
        self.last: dict[InstanceKey, LastTransition] = {}
        self.clocks: dict[str, ShardClock] = {}

    async def load_shard(
        self, shard_id: str, *, claim: bool = True
    ) -> tuple[list[InstanceState], ShardClock | None]:
        self._enter("load_shard")
        states = [s for key, s in sorted(self.instances.items()) if self.owner[key] == shard_id]
        return states, self.clocks.get(shard_id)

    async def load_instances(self, keys: Sequence[InstanceKey]) -> list[InstanceState]:
        self._enter("load_instances")
        return [self.instances[k] for k in dict.fromkeys(keys) if k in self.instances]

    async def remove(self, keys: Iterable[InstanceKey]) -> None:
        self._enter("remove")
        for key in keys:
            self.instances.pop(key, None)
            self.owner.pop(key, None)

    async def save(
        self,
        shard_id: str,
        states: Iterable[InstanceState],
        *,
        severity: Callable[[str], str],  # kept readable on the DynamoDB item only
        last: Callable[[InstanceKey], LastTransition | None],
        now_ms: int,
    ) -> int:
        self._enter("save")
        already = 0
        for s in states:
            key = (s.rule, s.series)
            stored = self.instances.get(key)
            if stored is not None and stored.version == s.version:
                already += 1
                continue
            if stored is not None and stored.version > s.version:
                raise StaleAlarmState(
                    f"alarm instance {key} is at version {stored.version}, ours is {s.version}"
                )
            self.instances[key], self.owner[key] = s, shard_id
            if (newest := last(key)) is not None:
                self.last[key] = newest
        return already

    async def save_clock(self, shard_id: str, clock: ShardClock) -> None:
        self._enter("save_clock")
        self.clocks[shard_id] = clock


class InMemoryNotifier(_Faults):
    """``Notifier`` with the ledger of ``aws.notifier``: a transition is recorded pending, published, then marked.

    ``published`` is what subscribers received, in order, repeats included.
    Operations: ``record``; per entry ``publish`` (a fault: the topic refused,
    nothing was sent) then ``mark`` (a fault: the process died after the topic
    took the message and before the ledger said so); ``recover``. An entry whose
    transition id is in ``claimed_elsewhere`` is left to the process said to hold
    its claim: ``publish`` hands it back, as ``aws.notifier`` does.
    """

    def __init__(self, journal: list[str] | None = None) -> None:
        super().__init__(journal)
        self.ledger: dict[tuple[str, str], LedgerEntry] = {}
        self.pending_shard: dict[tuple[str, str], str] = {}
        self.published: list[LedgerEntry] = []
        self.claimed_elsewhere: set[str] = set()  # transition ids another process holds a live claim on

    async def record(self, shard_id: str, transitions: Sequence[Transition]) -> list[LedgerEntry]:
        self._enter("record")
        entries = []
        for tr in transitions:
            key = (tr.series, sort_key(tr))
            if key not in self.ledger:
                body, attributes = notification(tr)
                self.ledger[key] = LedgerEntry(
                    series=tr.series, sk=key[1], transition_id=tr.transition_id, body=body,
                    attributes=attributes, status=PENDING, rule=tr.rule,
                )  # fmt: skip
                self.pending_shard[key] = shard_id
            entries.append(self.ledger[key])
        return [e for e in entries if e.status == PENDING]

    async def publish(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
        left = [e for e in entries if e.transition_id in self.claimed_elsewhere]
        for entry in (e for e in entries if e not in left):
            self._enter("publish")
            self.published.append(entry)
            self._enter("mark")
            key = (entry.series, entry.sk)
            self.ledger[key] = msgspec.structs.replace(entry, status=PUBLISHED)
            self.pending_shard.pop(key, None)
        return left

    async def recover(self, shard_id: str) -> list[LedgerEntry]:
        self._enter("recover")
        keys = sorted((k for k, owner in self.pending_shard.items() if owner == shard_id), key=lambda k: k[1])
        return await self.publish([self.ledger[k] for k in keys])

    def published_ids(self) -> list[str]:
        return [e.transition_id for e in self.published]
