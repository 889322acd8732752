"""The pure per-batch stage shared by every application: decode, reject, deduplicate.

``process_batch`` turns the Kinesis records of one batch into facts:
accepted messages (new ones, with their position in the shard), dead letters
with their reason code, and counts. It does no I/O and reads no clock; the
processor routes the facts to the sinks.

Besides the wire reasons of the spec, a user record is dead-lettered with a
processing reason (``ParkedReason``):

- ``stale_sequence``: the duplicate memory cannot tell it from a replay
  (``ingest.dedup``, rule 5). ``dlq redrive`` puts it back with the partition
  key ``redrive:<key>`` (and the original key's hash, so it lands on the same
  shard); such a record is accepted once even if it is still stale.
- ``misrouted``: a user record of a KPL aggregate that holds records of
  another shard (below).
- ``sink_rejected`` and ``max_record_age`` come from the processor (a sink
  refused the record itself; an operator chose to move on after an outage).

A KPL aggregate holding a user record outside the shard's hash-key range is
not read here (``misrouted``), as the Kinesis Client Library's deaggregation
drops it (so both drivers make the same of a stream): a KPL whose shard map
went stale in a reshard packs records of several shards into one aggregate,
and puts every record of an aggregate that landed on another shard than
predicted again (its "Wrong Shard" retry), so they arrive once more on their
own shard. Reading them here as well would count them twice, on a shard whose
duplicate memory, alarm instances and stats fences are not theirs. Unlike the
KCL, each of its user records is dead-lettered with reason ``misrouted``:
nothing read is dropped unaccounted, and ``dlq redrive`` of them is safe (a
re-driven record that the producer already put again is a duplicate on its own
shard; one a producer never re-sent is accepted once). On the KCL path the
daemon deaggregates, and drops such an aggregate itself only when its cached
shard list holds the shard (for a fresh child it often does not): the user
records it hands over share the aggregate's sequence number, and a group
holding a partition key outside the range is dead-lettered here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from enum import StrEnum

import msgspec

from wenu_stream.ingest.dedup import Dedup, Seen
from wenu_stream.model import HashRange, KinesisRecord, Position
from wenu_stream.records.crypto import KeyRing
from wenu_stream.records.decoding import Accepted, decode_record, decode_user_record
from wenu_stream.records.kpl import MAGIC, deaggregate, outside
from wenu_stream.records.payload import Message
from wenu_stream.records.rejections import Rejected

REDRIVE_PREFIX = "redrive:"  # partition key prefix of a record re-driven from the dead-letter store


class ParkedReason(StrEnum):
    """Dead-letter reasons of the processing stages (the wire's own are ``records.rejections.Reason``)."""

    STALE_SEQUENCE = "stale_sequence"
    MISROUTED = "misrouted"
    SINK_REJECTED = "sink_rejected"
    MAX_RECORD_AGE = "max_record_age"


class AcceptedMessage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A new message (never seen before on this shard), ready for the application's stages."""

    message: Message
    key_id: str
    position: Position
    arrival_ms: int
    raw: bytes = b""  # the user record, for a dead letter if a sink refuses it later
    partition_key: str = (
        ""  # as put (a re-drive's starts with REDRIVE_PREFIX; its hash is the original key's)
    )

    @property
    def hash_partition_key(self) -> str:
        """The key whose hash placed the message in its shard (a re-drive's original key, see ``ops.redrive``)."""
        return self.partition_key.removeprefix(REDRIVE_PREFIX)


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
    skipped: int = 0  # user records at or before the resume position (a replay of a checkpointed aggregate)
    misrouted: int = 0  # of the dead letters, user records of aggregates holding records of another shard
    last: Position | None = None

    @property
    def user_records(self) -> int:
        return len(self.accepted) + len(self.dead_letters) + self.duplicates


class Totals(msgspec.Struct, kw_only=True):
    """Cumulative counts of a shard, saved with its state so that a replay counts nothing twice."""

    records: int = 0  # Kinesis records
    accepted: int = 0
    duplicates: int = 0
    stale: int = 0  # states saved before stale_sequence dead letters: what was dropped as stale then
    misrouted: int = 0  # states saved before misrouted dead letters: user records dropped as misrouted then
    rejected: dict[str, int] = msgspec.field(default_factory=dict)

    def add(self, outcome: BatchOutcome, kinesis_records: int) -> None:
        self.records += kinesis_records
        self.accepted += len(outcome.accepted)
        self.duplicates += outcome.duplicates
        for reason, n in Counter(d.reason for d in outcome.dead_letters).items():
            self.rejected[reason] = self.rejected.get(reason, 0) + n


def process_batch(
    records: Sequence[KinesisRecord],
    keyring: KeyRing,
    dedup: Dedup,
    resume_after: Position | None = None,
    hash_range: HashRange | None = None,
) -> BatchOutcome:
    """Decode every user record of ``records`` and sort it into accepted, duplicate or dead letter.

    Args:
        records: one batch of a shard, in shard order.
        keyring: the keys to open envelopes with.
        dedup: the shard's duplicate detector; updated in place.
        resume_after: user records at or before this position were already
            processed (checkpointed inside an aggregated record) and are skipped.
        hash_range: the shard's hash-key range: an aggregate holding a user record outside it is
            dropped whole, counted ``misrouted`` (module docstring); None: no check.
    """
    outcome = BatchOutcome(accepted=[], dead_letters=[])
    accepted, dead_letters, check = outcome.accepted, outcome.dead_letters, dedup.check
    duplicates = skipped = misrouted = 0
    elsewhere = _misrouted_aggregates(records, hash_range) if hash_range is not None else frozenset()
    new = Seen.NEW
    for record in records:
        seq = int(record.sequence_number)
        arrival_ms = int(record.approximate_arrival_timestamp * 1000)
        data, sub = record.data, record.sub_sequence_number
        if elsewhere and record.sequence_number in elsewhere:
            misrouted += 1
            dead_letters.append(_misrouted(Position(seq, sub), data, record.partition_key, arrival_ms))
            continue
        results: Sequence[Accepted | Rejected]
        if data.startswith(MAGIC):  # KPL aggregates; the common plain record skips the list
            if hash_range is not None and outside(data, hash_range.start, hash_range.end):
                users = deaggregate(data, record.partition_key)
                misrouted += len(users)
                dead_letters.extend(
                    _misrouted(Position(seq, sub + i), user, key, arrival_ms)
                    for i, (key, user) in enumerate(users)
                )
                continue
            results = decode_record(data, record.partition_key, keyring)
        else:
            results = (decode_user_record(data, record.partition_key, 0, keyring),)
        for result in results:
            position = Position(seq, sub + result.sub_index)
            if resume_after is not None and position <= resume_after:
                skipped += 1
            elif isinstance(result, Accepted):
                message = result.message
                if result.partition_key.startswith(REDRIVE_PREFIX):
                    verdict = dedup.force(message.device, message.seq, message.sent_at)
                else:
                    verdict = check(message.device, message.seq, message.sent_at)
                if verdict is new:
                    accepted.append(
                        AcceptedMessage(
                            message=message,
                            key_id=result.key_id,
                            position=position,
                            arrival_ms=arrival_ms,
                            raw=result.raw,
                            partition_key=result.partition_key,
                        )
                    )
                elif verdict is Seen.DUPLICATE:
                    duplicates += 1
                else:
                    dead_letters.append(_stale(result, position, arrival_ms))
            else:
                dead_letters.append(_dead_letter(result, position, arrival_ms))
    if records:
        last = records[-1]
        outcome.last = Position(int(last.sequence_number), last.sub_sequence_number)
    outcome.duplicates, outcome.skipped, outcome.misrouted = duplicates, skipped, misrouted
    return outcome


def _misrouted_aggregates(records: Sequence[KinesisRecord], hash_range: HashRange) -> frozenset[str]:
    """Sequence numbers of aggregates the KCL daemon deaggregated without dropping a record of another shard.

    The daemon drops such an aggregate only when it knows the shard's range, which it often does not for a
    fresh child ("Cannot get the shard for this ProcessTask"). Its user records arrive as records sharing
    one sequence number (with sub-sequence numbers), each with its partition key; a lone record may be a
    plain one put with an explicit hash key (a re-drive), and is left alone.
    """
    if not any(r.sub_sequence_number for r in records):
        return frozenset()
    groups: dict[str, list[KinesisRecord]] = {}
    for r in records:
        groups.setdefault(r.sequence_number, []).append(r)
    return frozenset(
        seq
        for seq, group in groups.items()
        if len(group) > 1 and not all(hash_range.holds(r.partition_key) for r in group)
    )


def _misrouted(position: Position, raw: bytes, partition_key: str, arrival_ms: int) -> DeadLetter:
    return DeadLetter(
        position=position,
        reason=ParkedReason.MISROUTED.value,
        detail="in a KPL aggregate holding records of another shard (a producer's shard map gone stale in a reshard;"
        " a KPL puts them again on their own shard)",
        raw=raw,
        partition_key=partition_key,
        arrival_ms=arrival_ms,
    )


def _dead_letter(result: Rejected, position: Position, arrival_ms: int) -> DeadLetter:
    return DeadLetter(
        position=position,
        reason=str(result.reason),
        detail=result.detail,
        raw=result.raw,
        partition_key=result.partition_key,
        arrival_ms=arrival_ms,
    )


def _stale(result: Accepted, position: Position, arrival_ms: int) -> DeadLetter:
    m = result.message
    return DeadLetter(
        position=position,
        reason=ParkedReason.STALE_SEQUENCE.value,
        detail=(
            f"device {m.device} seq {m.seq} sent_at {m.sent_at} is older than its duplicate memory: it cannot be"
            " told from a replay; re-drive it if it is new data"
        ),
        raw=result.raw,
        partition_key=result.partition_key,
        arrival_ms=arrival_ms,
    )
