"""The dead-letter store (S3) and the shard state store (DynamoDB) against the moto server."""

from __future__ import annotations

import json

import boto3
import pytest
from aiobotocore.session import get_session

from wenu_stream.aws.dead_letters import S3DeadLetterStore
from wenu_stream.aws.provision import ensure_bucket, ensure_state_table
from wenu_stream.aws.s3_put import FastS3Put, S3PutError
from wenu_stream.aws.state import DynamoStateStore
from wenu_stream.config import load_config
from wenu_stream.ingest.batch import DeadLetter
from wenu_stream.model import Position

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


@pytest.mark.parametrize("fast", [False, True], ids=["sdk", "fast"])
async def test_dead_letters_land_once_at_deterministic_keys(
    aws_stack: object, unique_name: str, fast: bool
) -> None:
    config = load_config({}, {"sinks.bucket": unique_name})
    ensure_bucket(config, {})
    session = get_session()
    async with session.create_client("s3") as s3:
        writer = await FastS3Put.open(session, s3, unique_name) if fast else None
        try:
            store = S3DeadLetterStore(
                s3,
                bucket=unique_name,
                prefix="dead-letter/",
                app="processing",
                stream="readings",
                fast=writer,
            )
            await store.put("shardId-1", [letter(7), letter(9, "truncated")])
            await store.put("shardId-1", [letter(7)])  # a replay rewrites the same object
        finally:
            if writer is not None:
                await writer.close()
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=unique_name)["Contents"]]
    assert sorted(keys) == [
        f"dead-letter/processing/readings/auth_failed/shardId-1/{7:056d}-00002.json",
        f"dead-letter/processing/readings/truncated/shardId-1/{9:056d}-00002.json",
    ]
    doc = json.loads(boto3.client("s3").get_object(Bucket=unique_name, Key=keys[0])["Body"].read())
    assert doc | {"data_b64": None} == {
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
    assert doc["data_b64"] == "AQI="


async def test_fast_put_raises_on_an_error_status(aws_stack: object, unique_name: str) -> None:
    session = get_session()
    async with session.create_client("s3") as s3:
        writer = await FastS3Put.open(session, s3, unique_name)  # the bucket does not exist
        try:
            with pytest.raises(S3PutError, match="HTTP 404"):
                await writer.put("dead-letter/x.json", b"{}")
        finally:
            await writer.close()


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
