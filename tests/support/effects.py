"""What a run left in the stores, read back for comparison: object keys, dead letters, stats windows, staged rows,
checkpoints, a stream's records and the last sequence number of each shard; and a polling wait. Shared by the crash, sequence-reset and alarms-app scenarios."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from typing import Any

import boto3
import msgspec

from tests.support.stats import comparable
from wenu_stream.aws.dead_letters import iter_letters, letter_prefix
from wenu_stream.config import Config
from wenu_stream.drivers.native.leases import read_leases
from wenu_stream.warehouse.rows import decode_csv


def keys_under(config: Config, prefix: str) -> set[str]:
    s3 = boto3.client("s3")
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=config.sinks.bucket, Prefix=prefix):
        keys |= {o["Key"] for o in page.get("Contents", [])}
    return keys


def letters_of(config: Config) -> list[tuple[tuple[str, int, int], str, str]]:
    """Every dead letter once: (position, reason, record bytes), sorted (objects may be cut otherwise on a replay)."""
    prefix = letter_prefix(config.sinks.dead_letter_prefix, config.app, config.kinesis.stream)
    found = iter_letters(boto3.client("s3"), config.sinks.bucket, prefix)
    return sorted((lt.document.position, lt.document.reason, lt.document.data_b64) for lt in found)


def stats_table(config: Config) -> dict[tuple[str, str], Any]:
    """The stats window items a dashboard reads (series-state items hold commit bookkeeping that follows flush timing)."""
    pages = (
        boto3.client("dynamodb")
        .get_paginator("scan")
        .paginate(TableName=config.stats.table, ConsistentRead=True)
    )
    items = comparable([item for page in pages for item in page["Items"]])
    return {key: value for key, value in items.items() if not key[0].endswith("#state")}


def staged_rows(config: Config) -> set[tuple[object, ...]]:
    """Every staged warehouse row, as the loader's unique key sees them (file boundaries may differ)."""
    s3, rows = boto3.client("s3"), set()
    for key in keys_under(config, config.warehouse.staging_prefix):
        body = gzip.decompress(s3.get_object(Bucket=config.sinks.bucket, Key=key)["Body"].read())
        rows |= {msgspec.structs.astuple(row) for row in decode_csv(body)}
    return rows


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate`` every 0.1 s until it holds; TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def checkpointed(config: Config) -> int:
    """Lease rows whose checkpoint is a sequence number (0 while the table does not exist)."""
    try:
        return sum(lease.checkpoint.isdigit() for lease in read_leases(config.lease_table))
    except Exception:  # noqa: BLE001 - the lease table may not exist yet
        return 0


def last_checkpoints(lease_table: str, *, digits: bool = False) -> dict[str, str]:
    try:
        leases = read_leases(lease_table)
    except Exception:  # noqa: BLE001 - not created yet
        return {}
    return {lease.lease_key: lease.checkpoint for lease in leases if lease.checkpoint.isdigit() or not digits}


def stream_records(stream: str) -> list[tuple[str, dict[str, Any]]]:
    """Every record of the stream with its shard id, shard by shard from the start, in sequence order."""
    kinesis, out = boto3.client("kinesis"), []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        it = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            page = kinesis.get_records(ShardIterator=it, Limit=10_000)
            out += [(shard["ShardId"], r) for r in page["Records"]]
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            it = page.get("NextShardIterator")
    return out


def tail_sequences(stream: str) -> dict[str, str]:
    """The sequence number of the last record of every shard."""
    return {shard: record["SequenceNumber"] for shard, record in stream_records(stream)}
