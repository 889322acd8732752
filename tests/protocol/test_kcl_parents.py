"""A fresh shard's parents come from ListShards, since the daemon's initialize message does not carry them."""

from __future__ import annotations

import time

import boto3
import pytest

from tests.fixtures.aws import create_stream
from wenu_stream.drivers.kcl.adapter import kinesis_parent_lookup
from wenu_stream.model import HashRange

pytestmark = pytest.mark.integration


def wait_active(kinesis: object, stream: str) -> None:
    for _ in range(200):
        summary = kinesis.describe_stream_summary(StreamName=stream)  # type: ignore[attr-defined]
        if summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
            return
        time.sleep(0.05)
    raise TimeoutError(stream)


@pytest.mark.slow
def test_children_of_a_split_and_a_merge_name_their_parents(aws_stack: object, unique_name: str) -> None:
    kinesis = boto3.client("kinesis")
    first, second = create_stream(unique_name, 2, client=kinesis)
    kinesis.split_shard(StreamName=unique_name, ShardToSplit=first, NewStartingHashKey=str(2**126))
    wait_active(kinesis, unique_name)
    split_children = sorted(
        s["ShardId"]
        for s in kinesis.list_shards(StreamName=unique_name)["Shards"]
        if s.get("ParentShardId") == first
    )
    kinesis.merge_shards(
        StreamName=unique_name, ShardToMerge=split_children[0], AdjacentShardToMerge=split_children[1]
    )
    wait_active(kinesis, unique_name)
    shards = kinesis.list_shards(StreamName=unique_name)["Shards"]
    (merged,) = [s["ShardId"] for s in shards if s.get("AdjacentParentShardId")]
    lookup = kinesis_parent_lookup(unique_name, kinesis)

    assert len(split_children) == 2
    assert all(lookup(child).parents == (first,) for child in split_children)
    assert sorted(lookup(merged).parents) == sorted(split_children)
    assert lookup(merged).hash_range == HashRange(0, 2**127 - 1)
    assert [lookup(child).hash_range for child in split_children] == [
        HashRange(0, 2**126 - 1),
        HashRange(2**126, 2**127 - 1),
    ]
    assert lookup(first).parents == () and lookup(second).parents == ()
    assert lookup("shardId-000000009999").parents == ()
