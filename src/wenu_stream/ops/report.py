"""Read back what the consumers made durable: per-shard totals and dead letters (sync; operator tools and the demo)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import boto3
import msgspec

from wenu_stream.aws.dead_letters import count_by_reason, letter_prefix
from wenu_stream.config import Config
from wenu_stream.ingest.batch import Totals
from wenu_stream.ingest.processor import ShardState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client


def shard_totals(config: Config, client: DynamoDBClient | None = None) -> dict[str, Totals]:
    """The totals saved with each shard's newest state (its final state if the shard ended)."""
    ddb = client or boto3.client("dynamodb")
    prefix = f"{config.app}#{config.kinesis.stream}#"
    newest: dict[str, tuple[str, bytes]] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=config.sinks.state_table, ConsistentRead=True):
        for item in page.get("Items", []):
            pk = item["pk"]["S"]
            if not pk.startswith(prefix):
                continue
            shard, pos = pk[len(prefix) :], item["pos"]["S"]
            if shard not in newest or _later(pos, newest[shard][0]):
                newest[shard] = (pos, bytes(item["state"]["B"]))
    return {
        shard: msgspec.msgpack.decode(blob, type=ShardState).totals
        for shard, (_, blob) in sorted(newest.items())
    }


def _later(a: str, b: str) -> bool:
    if a == "SHARD_END" or b == "SHARD_END":
        return a == "SHARD_END"
    return a > b


def sum_totals(per_shard: dict[str, Totals]) -> Totals:
    """Add the totals of every shard."""
    out = Totals()
    rejected: Counter[str] = Counter()
    for t in per_shard.values():
        out.records += t.records
        out.accepted += t.accepted
        out.duplicates += t.duplicates
        out.stale += t.stale
        out.misrouted += t.misrouted
        rejected.update(t.rejected)
    out.rejected = dict(sorted(rejected.items()))
    return out


def dead_letter_counts(config: Config, client: S3Client | None = None) -> dict[str, int]:
    """Dead letters in the store by reason code (each stored position once)."""
    prefix = letter_prefix(config.sinks.dead_letter_prefix, config.app, config.kinesis.stream)
    return count_by_reason(client or boto3.client("s3"), config.sinks.bucket, prefix)
