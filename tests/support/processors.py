"""One fake ``ShardProcessor`` for the driver tests (native worker and KCL adapter), and the journal it writes.

The journal is a list of events in call order, as the protocol tests read them
(``("initialize", shard, checkpoint, parents)``, ``("process", sequence numbers,
millis behind)``, ``("flush",)``, ``("shard_ended",)``, ``("close",)``; the KCL
tests add the adapter's output to the same list), and keeps two views the
native-driver tests read: ``calls``, ``(worker, shard, (event, value))`` over every
processor of a test, and ``records``, the sequence numbers handed over per shard.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from wenu_stream.errors import SinkError
from wenu_stream.model import HashRange, KinesisRecord


class Journal(list[Any]):
    """What every fake processor of a test saw, in call order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, tuple[str, Any]]] = []  # (worker, shard, (event, value))
        self.records: dict[str, list[str]] = {}  # shard -> sequence numbers handed over, all workers

    def seen(self, shard: str) -> list[str]:
        return self.records.get(shard, [])


class FakeShardProcessor:
    """A ``ShardProcessor`` that records what its driver asks of it.

    ``process`` answers from ``answers`` (True: durable, checkpoint now; False: not
    yet; an exception: raised), then ``not coalesce``; a record whose data is
    ``poison`` raises (a bug in the processor). ``flush`` returns ``flush_to``, or
    with ``flush_pending`` the last sequence number processed since the last flush.
    It is not ``settled`` for ``unsettled_s`` seconds after it was built.
    """

    def __init__(
        self,
        journal: Journal | None = None,
        shard_id: str = "",
        *,
        worker: str = "w1",
        answers: Sequence[bool | Exception] = (),
        coalesce: bool = False,
        flush_to: str | None = None,
        flush_pending: bool = False,
        poison: bytes | None = None,
        unsettled_s: float = 0.0,
    ) -> None:
        self.journal = journal if journal is not None else Journal()
        self.events = self.journal  # the protocol tests' name for it
        self.shard_id, self.worker = shard_id, worker
        self.answers = list(answers)
        self.coalesce, self.flush_to, self.flush_pending, self.poison = (
            coalesce,
            flush_to,
            flush_pending,
            poison,
        )
        self.batches: list[list[KinesisRecord]] = []
        self.pending: str | None = None
        self.settles_at = time.monotonic() + unsettled_s

    def _log(self, event: tuple[Any, ...], value: Any = None) -> None:
        self.journal.append(event)
        self.journal.calls.append((self.worker, self.shard_id, (event[0], value)))

    async def initialize(
        self,
        shard_id: str,
        checkpoint: str | None,
        parent_shard_ids: Sequence[str],
        hash_range: HashRange | None = None,
    ) -> None:
        self.shard_id = self.shard_id or shard_id
        self._log(
            ("initialize", shard_id, checkpoint, tuple(parent_shard_ids)),
            (checkpoint, tuple(parent_shard_ids)),
        )

    async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> bool:
        if self.poison is not None and any(r.data == self.poison for r in records):
            raise RuntimeError("a bug in the processor")
        self.batches.append(list(records))
        sequences = [r.sequence_number for r in records]
        self._log(("process", sequences, millis_behind_latest), sequences)
        if records:
            self.journal.records.setdefault(self.shard_id, []).extend(sequences)
            self.pending = sequences[-1]
        answer = self.answers.pop(0) if self.answers else not self.coalesce
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def flush(self) -> str | None:
        if not self.flush_pending:
            self._log(("flush",), self.flush_to)
            return self.flush_to
        pending, self.pending = self.pending, None
        self._log(("flush",), pending)
        return pending

    @property
    def settled(self) -> bool:
        """False for ``unsettled_s`` after it was built (as a sink waiting on another process's claim)."""
        return time.monotonic() >= self.settles_at

    async def shard_ended(self) -> None:
        self._log(("shard_ended",))

    async def close(self) -> None:
        self._log(("close",))


class FailingSinkProcessor(FakeShardProcessor):
    """Every batch fails as if a sink stayed down after its retries."""

    async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> bool:
        raise SinkError("dead_letter: still failing after 6 attempts")
