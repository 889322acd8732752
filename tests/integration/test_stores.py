"""The dead-letter store (S3) and the shard state store (DynamoDB) against the moto server."""

from __future__ import annotations

import json

import boto3
import pytest
from aiobotocore.session import get_session

from wenu_stream.aws.dead_letters import S3DeadLetterStore, iter_letters, letter_prefix
from wenu_stream.aws.provision import ensure_bucket, ensure_state_table
from wenu_stream.aws.state import DynamoStateStore
from wenu_stream.config import load_config
from wenu_stream.ingest.batch import DeadLetter
from wenu_stream.model import Position
from wenu_stream.ops.report import dead_letter_counts

pytestmark = pytest.mark.integration


def letter(seq: int, reason: str = "auth_failed") -> DeadLetter:
    return DeadLetter(
        position=Position(seq, 2),
        reason=reason,
        detail="tag mismatch",
        raw=b"\x01\x02",
        partition_key="EM-1",
        arrival_ms=1_764_300_000_123,
    )


async def test_dead_letters_land_once_per_batch_and_reason_at_deterministic_keys(
    aws_stack: object, unique_name: str
) -> None:
    config = load_config({}, {"sinks.bucket": unique_name})
    ensure_bucket(config, {})
    async with get_session().create_client("s3") as s3:
        store = S3DeadLetterStore(
            s3, bucket=unique_name, prefix="dead-letter/", app="processing", stream="readings"
        )
        await store.put("shardId-1", [letter(9), letter(7), letter(8, "truncated"), letter(12)])
        await store.put("shardId-1", [letter(9), letter(7), letter(8, "truncated"), letter(12)])  # a replay
        assert store.puts == 4  # one object per reason of each batch
    client = boto3.client("s3")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=unique_name)["Contents"]]
    assert sorted(keys) == [
        f"dead-letter/processing/readings/auth_failed/shardId-1/{7:056d}-00002.jsonl",
        f"dead-letter/processing/readings/truncated/shardId-1/{8:056d}-00002.jsonl",
    ]
    lines = client.get_object(Bucket=unique_name, Key=sorted(keys)[0])["Body"].read().splitlines()
    docs = [json.loads(line) for line in lines]
    assert [d["sequence_number"] for d in docs] == ["7", "9", "12"]  # in shard order
    assert docs[0] | {"data_b64": None} == {
        "app": "processing",
        "stream": "readings",
        "shard_id": "shardId-1",
        "sequence_number": "7",
        "sub_sequence_number": 2,
        "partition_key": "EM-1",
        "reason": "auth_failed",
        "detail": "tag mismatch",
        "arrival_time": "2025-11-28T03:20:00.123+00:00",
        "data_b64": None,
    }
    assert docs[0]["data_b64"] == "AQI="


async def test_a_letter_a_replay_stored_twice_is_read_once(aws_stack: object, unique_name: str) -> None:
    """Batches of a replay after a crash can be cut differently: readers still see each position once."""
    config = load_config({}, {"sinks.bucket": unique_name})
    ensure_bucket(config, {})
    async with get_session().create_client("s3") as s3:
        store = S3DeadLetterStore(s3, bucket=unique_name, prefix="dl/", app="processing", stream="readings")
        await store.put("shardId-1", [letter(7)])  # first run: two batches...
        await store.put("shardId-1", [letter(9)])
        await store.put("shardId-1", [letter(7), letter(9)])  # ...replayed as one
    client = boto3.client("s3")
    assert len(client.list_objects_v2(Bucket=unique_name)["Contents"]) == 2
    letters = list(iter_letters(client, unique_name, letter_prefix("dl/", "processing", "readings")))
    assert [(lt.document.sequence_number, lt.line) for lt in letters] == [("7", 0), ("9", 1)]
    assert dead_letter_counts(load_config({}, {"sinks.bucket": unique_name, "sinks.dead_letter_prefix": "dl/",
                                               "kinesis.stream": "readings"}), client) == {"auth_failed": 2}  # fmt: skip


async def test_state_is_read_back_at_exactly_the_checkpoint(aws_stack: object, unique_name: str) -> None:
    config = load_config({}, {"sinks.state_table": unique_name})
    ensure_state_table(config, {})
    async with get_session().create_client("dynamodb") as ddb:
        store = DynamoStateStore(ddb, table=unique_name, app="processing", stream="readings")
        for seq in range(1, 40):
            await store.save("shard-a", str(seq * 1000), f"state-{seq}".encode())
        await store.save("shard-a", "SHARD_END", b"final")
        assert await store.load("shard-a", "39000") == b"state-39"
        assert await store.load("shard-a", "SHARD_END") == b"final"
        assert await store.load("shard-b", "39000") is None
        assert await store.load("shard-a", "1000") is None  # pruned: only the newest few are kept
