"""Re-drive dead letters: the ones the current key ring (or a fixed decoder) now accepts go back to the stream.

For each letter (optionally one reason, optionally arrived since a time), in
shard and sequence order:

1. decode its bytes with the current key ring (``decode_record``);
2. still rejected: the object stays. If the reason changed (a key was added
   but the record was tampered with, say), the letter moves to the new
   reason's key: the new object is written before the old one is deleted;
3. accepted: it is re-put to the stream with the partition key
   ``redrive:<its key>`` and its key's hash as ``ExplicitHashKey`` (so it lands
   on the device's shard and flows through the pipeline once; the prefix tells
   the consumer that an operator vouches for it, so a ``stale_sequence``
   letter is accepted once instead of parked again, and duplicate detection
   still guards against doubles), and its object is deleted only after
   PutRecords acknowledged that record.

A re-drive that stops part-way (crash, throttling) can simply run again: a
letter is only gone once its record is in the stream, and a record put twice
is counted as a duplicate by the consumer, never as a second reading.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgspec

from wenu_stream.backoff import Backoff
from wenu_stream.ingest.batch import REDRIVE_PREFIX
from wenu_stream.records.crypto import KeyRing
from wenu_stream.records.decoding import Accepted, decode_record

_PUT_BATCH = 500  # PutRecords limit
_PUT_ATTEMPTS = 5


class Letter(msgspec.Struct, frozen=True, kw_only=True):
    """One dead letter as stored, with its object key."""

    key: str
    document: dict[str, Any]

    @property
    def raw(self) -> bytes:
        return base64.b64decode(self.document["data_b64"])

    @property
    def partition_key(self) -> str:
        """The record's own partition key (without the prefix of an earlier re-drive)."""
        return str(self.document["partition_key"]).removeprefix(REDRIVE_PREFIX)


class RedriveResult(msgspec.Struct, kw_only=True):
    """What a re-drive did (or, in a dry run, would do)."""

    examined: int = 0
    redriven: int = 0  # put back to the stream and deleted from the store
    still_rejected: dict[str, int] = msgspec.field(default_factory=dict)  # by current reason
    reclassified: int = 0  # moved to a new reason's key
    put_failed: int = 0  # not acknowledged by PutRecords after retries: left in the store


def letter_prefix(prefix: str, app: str, stream: str, reason: str | None = None) -> str:
    """The object prefix of an application's dead letters (of one reason if given)."""
    return f"{prefix}{app}/{stream}/" + (f"{reason}/" if reason else "")


def iter_letters(s3: Any, bucket: str, prefix: str, since: dt.datetime | None = None) -> Iterator[Letter]:
    """Every letter under ``prefix`` (arrived at or after ``since`` if given), in key order."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            doc = msgspec.json.decode(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            if since is None or dt.datetime.fromisoformat(doc["arrival_time"]) >= since:
                yield Letter(key=obj["Key"], document=doc)


def reclassified_key(letter: Letter, reason: str) -> str:
    """The key of ``letter`` under another reason (the reason is the third segment from the shard)."""
    parts = letter.key.split("/")
    parts[-3] = reason
    return "/".join(parts)


def redrive(
    letters: Sequence[Letter],
    keyring: KeyRing,
    *,
    s3: Any,
    kinesis: Any,
    bucket: str,
    stream: str,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> RedriveResult:
    """Steps 1-3 of the module docstring over ``letters``."""
    result = RedriveResult(examined=len(letters))
    ordered = sorted(
        letters,
        key=lambda lt: (
            lt.document["shard_id"],
            int(lt.document["sequence_number"]),
            int(lt.document["sub_sequence_number"]),
        ),
    )
    accepted: list[Letter] = []
    still: Counter[str] = Counter()
    for letter in ordered:
        outcome = decode_record(letter.raw, letter.partition_key, keyring)
        first = outcome[0] if len(outcome) == 1 else None  # a letter holds one user record
        if isinstance(first, Accepted):
            accepted.append(letter)
            continue
        reason = letter.document["reason"] if first is None else str(first.reason)
        still[reason] += 1
        if first is not None and reason != letter.document["reason"]:
            result.reclassified += 1
            if not dry_run:
                _move(s3, bucket, letter, reason, first.detail)
    result.still_rejected = dict(sorted(still.items()))
    if dry_run:
        result.redriven = len(accepted)
        return result
    for start in range(0, len(accepted), _PUT_BATCH):
        batch = accepted[start : start + _PUT_BATCH]
        done = _put(kinesis, stream, batch, sleep)
        for letter in done:
            s3.delete_object(Bucket=bucket, Key=letter.key)
        result.redriven += len(done)
        result.put_failed += len(batch) - len(done)
    return result


def _move(s3: Any, bucket: str, letter: Letter, reason: str, detail: str) -> None:
    doc = letter.document | {"reason": reason, "detail": detail}
    s3.put_object(
        Bucket=bucket,
        Key=reclassified_key(letter, reason),
        Body=msgspec.json.encode(doc),
        ContentType="application/json",
    )
    s3.delete_object(Bucket=bucket, Key=letter.key)


def _put(kinesis: Any, stream: str, batch: list[Letter], sleep: Callable[[float], None]) -> list[Letter]:
    """Put ``batch`` in order; retry the records PutRecords did not acknowledge. Returns the acknowledged ones."""
    pending, done = list(batch), list[Letter]()
    backoff = Backoff(base=0.1, cap=2.0)
    for _ in range(_PUT_ATTEMPTS):
        out = kinesis.put_records(
            StreamName=stream, Records=[redrive_entry(lt.raw, lt.partition_key) for lt in pending]
        )
        retry: list[Letter] = []
        for letter, record in zip(pending, out["Records"], strict=True):
            (retry if "ErrorCode" in record else done).append(letter)
        if not retry:
            break
        pending = retry
        sleep(backoff.next_delay())
    return done


def redrive_entry(data: bytes, partition_key: str) -> dict[str, Any]:
    """The PutRecords entry of a re-driven record: marked as re-driven, routed like its own partition key."""
    hash_key = int.from_bytes(hashlib.md5(partition_key.encode(), usedforsecurity=False).digest(), "big")
    return {"Data": data, "PartitionKey": REDRIVE_PREFIX + partition_key, "ExplicitHashKey": str(hash_key)}
