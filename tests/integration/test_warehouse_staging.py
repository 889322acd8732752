"""The staging sink on moto S3: one file per shard per flush, rewritten by a replay, kept in memory on failure."""

from __future__ import annotations

import asyncio
import gzip

import boto3
import pytest
from aiobotocore.session import get_session

from tests.integration.test_warehouse_postgres import SHARDS, keys, readings
from wenu_stream.warehouse.rows import decode_csv
from wenu_stream.warehouse.staging import S3StagingSink

pytestmark = pytest.mark.integration


async def write_and_flush(bucket: str, sink_calls: int = 1) -> S3StagingSink:
    async with get_session().create_client("s3") as s3:
        sink = S3StagingSink(s3, bucket=bucket, prefix="staging/", app="processing", stream="readings")
        for _ in range(sink_calls):
            await sink.write_readings(SHARDS[0], readings(0, 1, 10))
            await sink.write_readings(SHARDS[1], readings(1, 5, 6))
            await sink.write_readings(SHARDS[0], readings(0, 11, 12))
            await sink.flush()
        return sink


def test_one_file_per_shard_and_a_replay_rewrites_it(aws_stack: object, unique_name: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=unique_name)
    asyncio.run(write_and_flush(unique_name))
    first = keys(unique_name, "staging/")
    assert [k.split("/")[3] for k in first] == list(SHARDS)
    assert all(k.startswith("staging/processing/readings/") for k in first)
    body = s3.get_object(Bucket=unique_name, Key=first[0])["Body"].read()
    assert [(r.seq, r.idx) for r in decode_csv(gzip.decompress(body))] == [
        (n, i) for n in range(1, 13) for i in (0, 1)
    ]

    asyncio.run(write_and_flush(unique_name))  # the same records again: the same objects
    assert keys(unique_name, "staging/") == first
    assert s3.get_object(Bucket=unique_name, Key=first[0])["Body"].read() == body


@pytest.mark.slow
def test_a_failed_flush_keeps_the_readings_for_the_next(aws_stack: object, unique_name: str) -> None:
    async def scenario() -> tuple[int, int]:
        async with get_session().create_client("s3") as s3:
            sink = S3StagingSink(
                s3, bucket=unique_name, prefix="staging/", app="processing", stream="readings"
            )
            await sink.write_readings(SHARDS[0], readings(0, 1, 3))
            with pytest.raises(s3.exceptions.NoSuchBucket):
                await sink.flush()  # the bucket does not exist yet
            held = sink.pending_rows
            await s3.create_bucket(Bucket=unique_name)
            await sink.flush()
            return held, sink.pending_rows

    assert asyncio.run(scenario()) == (6, 0)
    assert len(keys(unique_name, "staging/")) == 1
