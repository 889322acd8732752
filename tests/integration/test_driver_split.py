"""Resharding on kinesis-local (the emulator that ends a closed shard with ChildShards): parents before children."""

from __future__ import annotations

import asyncio

import boto3
import pytest

from tests.fixtures.aws import create_stream
from tests.support.driver import put, settings, start
from tests.support.processors import Journal
from wenu_stream.drivers.native.leases import read_leases

pytestmark = pytest.mark.integration


@pytest.mark.slow
async def test_a_split_parent_is_read_to_its_end_before_either_child(
    use_kinesis_local: str, unique_name: str
) -> None:
    kinesis = boto3.client("kinesis")
    (parent,) = create_stream(unique_name, 1, kinesis)
    before = put(unique_name, 6, 1)[parent]
    kinesis.split_shard(StreamName=unique_name, ShardToSplit=parent, NewStartingHashKey=str(2**127))
    for _ in range(200):
        children = [
            s["ShardId"]
            for s in kinesis.list_shards(StreamName=unique_name)["Shards"]
            if s.get("ParentShardId") == parent
        ]
        if len(children) == 2:
            break
        await asyncio.sleep(0.05)
    after = put(unique_name, 6, 2)
    assert set(after) == set(children)
    journal = Journal()
    result = await start(settings(unique_name, "w1", **{"kinesis.idle_exit_s": 1.5}), journal)
    assert (result.failed, result.records, result.shards_ended) == (False, 12, 1)
    order = [(shard, event) for _, shard, (event, _) in journal.calls]
    parent_end = order.index((parent, "shard_ended"))
    assert all(order.index((child, "initialize")) > parent_end for child in children)
    assert journal.seen(parent) == before
    assert {c: journal.seen(c) for c in children} == after
    inits = {shard: value for _, shard, (event, value) in journal.calls if event == "initialize"}
    assert inits[children[0]] == inits[children[1]] == ("TRIM_HORIZON", (parent,))
    leases = {x.lease_key: x for x in read_leases(unique_name)}
    assert (leases[parent].checkpoint, leases[parent].child_shard_ids) == (
        "SHARD_END",
        tuple(sorted(children)),
    )
    assert {c: leases[c].checkpoint for c in children} == {c: after[c][-1] for c in children}
    assert all(leases[c].parent_shard_ids == (parent,) for c in children)
