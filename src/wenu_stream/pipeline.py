"""The pure per-batch stage shared by every application: decode, reject, deduplicate.

``process_batch`` turns the Kinesis records of one batch into facts:
accepted messages (new ones, with their position in the shard), dead letters
with their spec reason code, and counts. It does no I/O and reads no clock;
the processor routes the facts to the sinks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import msgspec

from wenu_stream.crypto import KeyRing
from wenu_stream.dedup import Dedup, Seen
from wenu_stream.model import KinesisRecord, Position
from wenu_stream.records.decoding import Accepted, decode_record
from wenu_stream.records.payload import Message
from wenu_stream.records.rejections import Rejected


class AcceptedMessage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A new message (never seen before on this shard), ready for the application's stages."""

    message: Message
    key_id: str
    position: Position
    arrival_ms: int


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A user record that goes to the dead-letter store, with everything needed to inspect or re-drive it."""

    position: Position
    reason: str
    detail: str
    raw: bytes
    partition_key: str
    arrival_ms: int


class BatchOutcome(msgspec.Struct, kw_only=True):
    """What one batch amounted to."""

    accepted: list[AcceptedMessage]
    dead_letters: list[DeadLetter]
    duplicates: int = 0
    stale: int = 0
    skipped: int = 0  # user records at or before the resume position (a replay of a checkpointed aggregate)
    last: Position | None = None

    @property
    def user_records(self) -> int:
        return len(self.accepted) + len(self.dead_letters) + self.duplicates + self.stale


class Totals(msgspec.Struct, kw_only=True):
    """Cumulative counts of a shard, saved with its state so that a replay counts nothing twice."""

    records: int = 0  # Kinesis records
    accepted: int = 0
    duplicates: int = 0
    stale: int = 0
    rejected: dict[str, int] = msgspec.field(default_factory=dict)

    def add(self, outcome: BatchOutcome, kinesis_records: int) -> None:
        self.records += kinesis_records
        self.accepted += len(outcome.accepted)
        self.duplicates += outcome.duplicates
        self.stale += outcome.stale
        for reason, n in Counter(d.reason for d in outcome.dead_letters).items():
            self.rejected[reason] = self.rejected.get(reason, 0) + n


def process_batch(
    records: Sequence[KinesisRecord],
    keyring: KeyRing,
    dedup: Dedup,
    resume_after: Position | None = None,
) -> BatchOutcome:
    """Decode every user record of ``records`` and sort it into accepted, duplicate or dead letter.

    Args:
        records: one batch of a shard, in shard order.
        keyring: the keys to open envelopes with.
        dedup: the shard's duplicate detector; updated in place.
        resume_after: user records at or before this position were already
            processed (checkpointed inside an aggregated record) and are skipped.
    """
    outcome = BatchOutcome(accepted=[], dead_letters=[])
    for record in records:
        seq = int(record.sequence_number)
        arrival_ms = int(record.approximate_arrival_timestamp * 1000)
        for result in decode_record(record.data, record.partition_key, keyring):
            position = Position(seq, record.sub_sequence_number + result.sub_index)
            if resume_after is not None and position <= resume_after:
                outcome.skipped += 1
                continue
            if isinstance(result, Accepted):
                _accept(outcome, dedup, result, position, arrival_ms)
            else:
                outcome.dead_letters.append(_dead_letter(result, position, arrival_ms))
        if records:
            outcome.last = Position(seq, record.sub_sequence_number)
    return outcome


def _accept(outcome: BatchOutcome, dedup: Dedup, result: Accepted, position: Position, arrival_ms: int) -> None:
    verdict = dedup.check(result.message.device, result.message.seq)
    if verdict is Seen.NEW:
        outcome.accepted.append(
            AcceptedMessage(message=result.message, key_id=result.key_id, position=position, arrival_ms=arrival_ms)
        )
    elif verdict is Seen.DUPLICATE:
        outcome.duplicates += 1
    else:
        outcome.stale += 1


def _dead_letter(result: Rejected, position: Position, arrival_ms: int) -> DeadLetter:
    return DeadLetter(
        position=position, reason=str(result.reason), detail=result.detail, raw=result.raw,
        partition_key=result.partition_key, arrival_ms=arrival_ms,
    )
