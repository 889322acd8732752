"""Where a checkpoint sits in its shard, and which checkpoint resumes at a given time (sync boto3 Kinesis).

Lag of a checkpoint (``probe_lag``): one GetShardIterator from the checkpoint
and GetRecords with ``Limit=1`` (a few calls at most, following empty pages).
It reports ``MillisBehindLatest`` where the service gives it (AWS,
kinesis-local; kinesalite always says 0) and the age of the first record after
the checkpoint (``ApproximateArrivalTimestamp``), which every emulator gives:
how long the oldest unprocessed record has been waiting. ``count_behind``
optionally counts the records between the checkpoint and the tip (pages of
10,000, capped), because that read competes with the consumers for the shard's
read throughput.

Timestamp to checkpoint (``checkpoint_before``): GetShardIterator AT_TIMESTAMP
finds R, the first record at or after the time. Kinesis cannot read backwards,
so the record just before R is found by reading forward from ever earlier
times (10 s, 5 min, 1 h, 1 day before, then TRIM_HORIZON) until a window holds
a record older than R. Checkpointing that record makes the consumer resume at R.
No record before R: TRIM_HORIZON. No R: the shard's last record (the consumer
resumes with whatever arrives next), or TRIM_HORIZON for an empty shard.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import msgspec
from botocore.exceptions import ClientError

from wenu_stream.aws.common import error_code, error_message
from wenu_stream.model import LATEST, SHARD_END, TRIM_HORIZON
from wenu_stream.records.kpl import deaggregate

if TYPE_CHECKING:
    from mypy_boto3_kinesis.client import KinesisClient
    from mypy_boto3_kinesis.type_defs import GetShardIteratorInputTypeDef, RecordTypeDef

_WINDOWS_S = (10, 300, 3600, 86_400)
_MAX_CALLS = 1000  # per scan: each GetRecords advances, so a sparse shard still ends


class Lag(msgspec.Struct, frozen=True, kw_only=True):
    """How far a checkpoint is behind the tip of its shard."""

    millis_behind_latest: int | None  # as reported by GetRecords (0 on kinesalite), None if not read
    next_record_age_ms: int | None  # age of the first unprocessed record; None when caught up
    records_behind: int | None = None  # counted only on request
    capped: bool = False  # records_behind stopped at the cap


def start_iterator(
    kinesis: KinesisClient, stream: str, shard_id: str, checkpoint: str, sub: int = 0
) -> str | None:
    """The iterator a consumer would resume from after ``checkpoint``; None for LATEST and SHARD_END."""
    if checkpoint in (LATEST, SHARD_END):
        return None
    request: GetShardIteratorInputTypeDef = {
        "StreamName": stream,
        "ShardId": shard_id,
        "ShardIteratorType": "TRIM_HORIZON",
    }
    if checkpoint not in (TRIM_HORIZON, "AT_TIMESTAMP"):
        request["ShardIteratorType"] = "AT_SEQUENCE_NUMBER" if sub else "AFTER_SEQUENCE_NUMBER"
        request["StartingSequenceNumber"] = checkpoint
    return str(kinesis.get_shard_iterator(**request)["ShardIterator"])


def probe_lag(
    kinesis: KinesisClient,
    stream: str,
    shard_id: str,
    checkpoint: str,
    sub: int,
    now_ms: int,
    *,
    count: bool = False,
    cap: int = 100_000,
) -> Lag:
    """Read a few records from ``checkpoint`` and say how far behind the tip it is (module docstring)."""
    if sub and aggregate_done(kinesis, stream, shard_id, checkpoint, sub):
        sub = 0  # the last user record of the aggregate was processed: resume after the record, as the consumer does
    iterator = start_iterator(kinesis, stream, shard_id, checkpoint, sub)
    if iterator is None:
        return Lag(
            millis_behind_latest=0 if checkpoint == SHARD_END else None,
            next_record_age_ms=None,
            records_behind=0 if count and checkpoint == SHARD_END else None,
        )
    first, millis = _first_record(kinesis, iterator)
    age = None if first is None else max(0, now_ms - _arrival_ms(first))
    if not count:
        return Lag(millis_behind_latest=millis, next_record_age_ms=age)
    behind, capped = _count(kinesis, start_iterator(kinesis, stream, shard_id, checkpoint, sub), cap)
    return Lag(millis_behind_latest=millis, next_record_age_ms=age, records_behind=behind, capped=capped)


def aggregate_done(kinesis: KinesisClient, stream: str, shard_id: str, checkpoint: str, sub: int) -> bool:
    """Whether a checkpoint ``(checkpoint, sub)`` stands on the last user record of its KPL aggregate.

    The consumer then resumes after the record; only an aggregate with user records after
    ``sub`` still has work in it.
    """
    if checkpoint in (LATEST, SHARD_END, TRIM_HORIZON, "AT_TIMESTAMP"):
        return False
    iterator = kinesis.get_shard_iterator(
        StreamName=stream,
        ShardId=shard_id,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=checkpoint,
    )["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator, Limit=1)["Records"]
    if not records or str(records[0]["SequenceNumber"]) != checkpoint:
        return False
    record = records[0]
    return sub >= len(deaggregate(record["Data"], record.get("PartitionKey", ""))) - 1


def _first_record(kinesis: KinesisClient, iterator: str | None) -> tuple[RecordTypeDef | None, int | None]:
    millis = None
    for _ in range(5):  # AWS may answer empty pages before the first record of a sparse shard
        if iterator is None:
            break
        out = kinesis.get_records(ShardIterator=iterator, Limit=1)
        millis = out.get("MillisBehindLatest")
        if out["Records"]:
            return out["Records"][0], millis
        if not millis:
            break
        iterator = out.get("NextShardIterator")
    return None, millis


def _count(kinesis: KinesisClient, iterator: str | None, cap: int) -> tuple[int, bool]:
    total = 0
    for _ in range(_MAX_CALLS):
        if iterator is None or total >= cap:
            break
        out = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        total += len(out["Records"])
        if not out["Records"] and not out.get("MillisBehindLatest"):
            break
        iterator = out.get("NextShardIterator")
    return min(total, cap), total >= cap


def _arrival_ms(record: RecordTypeDef) -> int:
    return int(record["ApproximateArrivalTimestamp"].timestamp() * 1000)  # botocore parses it to a datetime


def check_sequence(kinesis: KinesisClient, stream: str, shard_id: str, sequence: str) -> str | None:
    """None if a record of ``shard_id`` has the sequence number ``sequence``, else what is wrong with it.

    GetShardIterator accepts any well-formed sequence number of the shard, also
    one past its last record (a reset there would skip the records that come
    next), so the record itself is read back.
    """
    try:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream,
            ShardId=shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=sequence,
        )["ShardIterator"]
    except ClientError as exc:
        return f"{error_code(exc) or 'error'}: {error_message(exc)}".strip()
    first, _ = _first_record(kinesis, iterator)
    if first is None:
        return "no record has it: it lies past the last record of the shard"
    if str(first["SequenceNumber"]) != sequence:
        return f"no record has it; the next record is {first['SequenceNumber']}"
    return None


def checkpoint_before(
    kinesis: KinesisClient, stream: str, shard_id: str, at: dt.datetime
) -> tuple[str, str | None]:
    """The checkpoint that makes a consumer resume at the first record at or after ``at``.

    Returns:
        ``(checkpoint, first)``: a sequence number or TRIM_HORIZON, and the
        sequence number of the record processing resumes at (None if no record
        is at or after ``at`` yet).
    """
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="AT_TIMESTAMP", Timestamp=at
    )["ShardIterator"]
    first, _ = _first_record(kinesis, iterator)
    bound = None if first is None else int(first["SequenceNumber"])
    first_seq = None if first is None else str(first["SequenceNumber"])
    for window in (*_WINDOWS_S, None):
        previous = _last_before(
            kinesis, stream, shard_id, bound, None if window is None else at - dt.timedelta(seconds=window)
        )
        if previous is not None:
            return previous, first_seq
    return TRIM_HORIZON, first_seq


def _last_before(
    kinesis: KinesisClient, stream: str, shard_id: str, bound: int | None, start: dt.datetime | None
) -> str | None:
    """The last record older than ``bound`` (any record if None) read from ``start`` (TRIM_HORIZON if None)."""
    request: GetShardIteratorInputTypeDef = {
        "StreamName": stream,
        "ShardId": shard_id,
        "ShardIteratorType": "TRIM_HORIZON",
    }
    if start is not None:
        request["ShardIteratorType"] = "AT_TIMESTAMP"
        request["Timestamp"] = start
    iterator: str | None = kinesis.get_shard_iterator(**request)["ShardIterator"]
    last: str | None = None
    for _ in range(_MAX_CALLS):
        if iterator is None:
            break
        out = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        for record in out["Records"]:
            if bound is not None and int(record["SequenceNumber"]) >= bound:
                return last
            last = str(record["SequenceNumber"])
        if not out["Records"] and not out.get("MillisBehindLatest"):
            break
        iterator = out.get("NextShardIterator")
    return last
