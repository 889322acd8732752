"""Re-drive dead letters: the ones the current key ring (or a fixed decoder) now accepts go back to the stream.

Over the objects under a prefix (``aws.dead_letters``), for each letter selected
(optionally arrived since a time; a position stored twice counts once), in shard
and sequence order:

1. decode its bytes with the current key ring (``decode_record``);
2. still rejected for the same reason: it stays. For another reason (a key was
   added but the record was tampered with, say), it moves: the letters that move
   are written under the new reason (merged into an object already at that key)
   before they leave their old object;
3. accepted: it is re-put to the stream with the partition key
   ``redrive:<its key>`` and its key's hash as ``ExplicitHashKey`` (so it lands
   on the device's shard and flows through the pipeline once; the prefix tells
   the consumer that an operator vouches for it, so a ``stale_sequence``
   letter is accepted once instead of parked again, and duplicate detection
   still guards against doubles), and leaves its object only after PutRecords
   acknowledged it.

Then each object that lost letters is rewritten with the ones that stay, or
deleted when none stay. A re-drive that stops part-way (crash, throttling) can
simply run again: a letter is only gone once its record is in the stream (or
its new reason's object), and a record put twice is counted as a duplicate by
the consumer, never as a second reading.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import msgspec

from wenu_stream.aws.dead_letters import (
    DeadLetterDocument,
    LetterObject,
    encode_lines,
    group_by_reason,
    object_key,
    read_object,
)
from wenu_stream.backoff import Backoff
from wenu_stream.ingest.batch import REDRIVE_PREFIX
from wenu_stream.records.crypto import KeyRing
from wenu_stream.records.decoding import Accepted, decode_record

if TYPE_CHECKING:
    from mypy_boto3_kinesis.client import KinesisClient
    from mypy_boto3_kinesis.type_defs import PutRecordsRequestEntryTypeDef
    from mypy_boto3_s3.client import S3Client

_PUT_BATCH = 500  # PutRecords limit
_PUT_ATTEMPTS = 5

Position = tuple[str, int, int]


class RedriveResult(msgspec.Struct, kw_only=True):
    """What a re-drive did (or, in a dry run, would do)."""

    examined: int = 0
    redriven: int = 0  # put back to the stream and removed from the store
    still_rejected: dict[str, int] = msgspec.field(default_factory=dict)  # by current reason
    reclassified: int = 0  # moved to a new reason's object
    put_failed: int = 0  # not acknowledged by PutRecords after retries: left in the store


class _Plan(msgspec.Struct):
    accepted: list[DeadLetterDocument]
    moved: list[DeadLetterDocument]  # with their new reason and detail
    still: Counter[str]


def redrive(
    objects: Sequence[LetterObject],
    keyring: KeyRing,
    *,
    s3: S3Client,
    kinesis: KinesisClient,
    bucket: str,
    stream: str,
    prefix: str,
    since_ms: int | None = None,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> RedriveResult:
    """Steps 1-3 of the module docstring over the letters of ``objects`` (``prefix``: the dead-letter prefix)."""
    selected = _select(objects, since_ms)
    plan = _decide(selected, keyring)
    result = RedriveResult(
        examined=len(selected), still_rejected=dict(sorted(plan.still.items())), reclassified=len(plan.moved)
    )
    if dry_run:
        result.redriven = len(plan.accepted)
        return result
    written = {
        _merge_into(s3, bucket, prefix, group): {d.position for d in group} for group in _moves(plan.moved)
    }
    gone: set[Position] = {d.position for d in plan.moved}
    for start in range(0, len(plan.accepted), _PUT_BATCH):
        batch = plan.accepted[start : start + _PUT_BATCH]
        done = _put(kinesis, stream, batch, sleep)
        gone.update(d.position for d in done)
        result.redriven += len(done)
        result.put_failed += len(batch) - len(done)
    for obj in objects:
        if obj.key in written:  # also the target of a move: read it again, keep what moved in
            fresh = LetterObject(obj.key, read_object(s3, bucket, obj.key) or [])
            _rewrite(s3, bucket, fresh, gone - written[obj.key])
        else:
            _rewrite(s3, bucket, obj, gone)
    return result


def _select(objects: Sequence[LetterObject], since_ms: int | None) -> list[DeadLetterDocument]:
    """The letters to examine, once per position, in shard order."""
    found: dict[Position, DeadLetterDocument] = {}
    for obj in objects:
        for doc in obj.letters:
            if since_ms is None or doc.arrival_ms >= since_ms:
                found.setdefault(doc.position, doc)
    return [found[p] for p in sorted(found)]


def _decide(letters: Sequence[DeadLetterDocument], keyring: KeyRing) -> _Plan:
    plan = _Plan(accepted=[], moved=[], still=Counter())
    for doc in letters:
        outcome = decode_record(doc.raw, _own_key(doc), keyring)
        first = outcome[0] if len(outcome) == 1 else None  # a letter holds one user record
        if isinstance(first, Accepted):
            plan.accepted.append(doc)
            continue
        reason = doc.reason if first is None else str(first.reason)
        plan.still[reason] += 1
        if first is not None and reason != doc.reason:
            plan.moved.append(msgspec.structs.replace(doc, reason=reason, detail=first.detail))
    return plan


def _moves(moved: Sequence[DeadLetterDocument]) -> list[list[DeadLetterDocument]]:
    """Moved letters grouped by (shard, new reason)."""
    groups: dict[tuple[str, str], list[DeadLetterDocument]] = {}
    for doc in moved:
        groups.setdefault((doc.shard_id, doc.reason), []).append(doc)
    return [group for _, group in sorted(groups.items())]


def _merge_into(s3: S3Client, bucket: str, prefix: str, group: list[DeadLetterDocument]) -> str:
    """Write letters under their new reason (an object already at that key keeps its letters); return the key."""
    (reason, ordered), *_ = group_by_reason(group).items()
    first = ordered[0]
    key = object_key(prefix, first.app, first.stream, reason, first.shard_id, first)
    merged = {d.position: d for d in read_object(s3, bucket, key) or []} | {d.position: d for d in ordered}
    s3.put_object(
        Bucket=bucket, Key=key, Body=encode_lines(list(merged.values())), ContentType="application/x-ndjson"
    )
    return key


def _rewrite(s3: S3Client, bucket: str, obj: LetterObject, gone: set[Position]) -> None:
    """Rewrite an object without the letters that left it, or delete it when none stay."""
    stay = [d for d in obj.letters if d.position not in gone]
    if len(stay) == len(obj.letters):
        return
    if stay:
        s3.put_object(Bucket=bucket, Key=obj.key, Body=encode_lines(stay), ContentType="application/x-ndjson")
    else:
        s3.delete_object(Bucket=bucket, Key=obj.key)


def _put(
    kinesis: KinesisClient, stream: str, batch: list[DeadLetterDocument], sleep: Callable[[float], None]
) -> list[DeadLetterDocument]:
    """Put ``batch`` in order; retry the records PutRecords did not acknowledge. Returns the acknowledged ones."""
    pending, done = list(batch), list[DeadLetterDocument]()
    backoff = Backoff(base=0.1, cap=2.0)
    for _ in range(_PUT_ATTEMPTS):
        out = kinesis.put_records(
            StreamName=stream, Records=[redrive_entry(d.raw, _own_key(d)) for d in pending]
        )
        retry: list[DeadLetterDocument] = []
        for doc, record in zip(pending, out["Records"], strict=True):
            (retry if "ErrorCode" in record else done).append(doc)
        if not retry:
            break
        pending = retry
        sleep(backoff.next_delay())
    return done


def _own_key(doc: DeadLetterDocument) -> str:
    """The record's own partition key (without the prefix of an earlier re-drive)."""
    return doc.partition_key.removeprefix(REDRIVE_PREFIX)


def redrive_entry(data: bytes, partition_key: str) -> PutRecordsRequestEntryTypeDef:
    """The PutRecords entry of a re-driven record: marked as re-driven, routed like its own partition key."""
    hash_key = int.from_bytes(hashlib.md5(partition_key.encode(), usedforsecurity=False).digest(), "big")
    return {"Data": data, "PartitionKey": REDRIVE_PREFIX + partition_key, "ExplicitHashKey": str(hash_key)}
