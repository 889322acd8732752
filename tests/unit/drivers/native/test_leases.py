"""Lease rows in the KCL schema, expiry by unchanged counters, readiness and balancing (no network)."""

from __future__ import annotations

import random

import msgspec

from wenu_stream.drivers.native.balance import ExpiryTracker, is_ready, plan_takes
from wenu_stream.drivers.native.consumer import start_position
from wenu_stream.drivers.native.kinesis import Shard
from wenu_stream.drivers.native.leases import Lease, from_item, to_item
from wenu_stream.drivers.native.worker import parents_first


def lease(key: str, owner: str | None = None, counter: int = 1, **kw: object) -> Lease:
    return Lease(lease_key=key, lease_owner=owner, lease_counter=counter, **kw)  # type: ignore[arg-type]


def test_item_uses_the_kcl_attribute_names_and_types() -> None:
    row = Lease(
        lease_key="shardId-000000000002",
        lease_owner="w1",
        lease_counter=7,
        checkpoint="4960",
        checkpoint_sub_sequence_number=3,
        owner_switches_since_checkpoint=1,
        parent_shard_ids=("shardId-000000000000",),
        child_shard_ids=("c2", "c1"),
        starting_hash_key="0",
        ending_hash_key="170141183460469231731687303715884105727",
    )
    assert to_item(row) == {
        "leaseKey": {"S": "shardId-000000000002"},
        "leaseOwner": {"S": "w1"},
        "leaseCounter": {"N": "7"},
        "checkpoint": {"S": "4960"},
        "checkpointSubSequenceNumber": {"N": "3"},
        "ownerSwitchesSinceCheckpoint": {"N": "1"},
        "parentShardId": {"SS": ["shardId-000000000000"]},
        "childShardIds": {"SS": ["c1", "c2"]},
        "startingHashKey": {"S": "0"},
        "endingHashKey": {"S": "170141183460469231731687303715884105727"},
    }
    assert from_item(to_item(row)) == msgspec.structs.replace(row, child_shard_ids=("c1", "c2"))


def test_a_new_unowned_lease_leaves_out_owner_and_empty_sets() -> None:
    item = to_item(Lease(lease_key="s-1"))
    assert set(item) == {
        "leaseKey",
        "leaseCounter",
        "checkpoint",
        "checkpointSubSequenceNumber",
        "ownerSwitchesSinceCheckpoint",
    }
    assert item["checkpoint"] == {"S": "TRIM_HORIZON"}


def test_a_kcl_written_row_with_handoff_fields_is_read() -> None:
    item = {
        "leaseKey": {"S": "s-1"},
        "leaseOwner": {"S": "kcl-w"},
        "leaseCounter": {"N": "41"},
        "checkpoint": {"S": "123"},
        "checkpointSubSequenceNumber": {"N": "2"},
        "ownerSwitchesSinceCheckpoint": {"N": "0"},
        "checkpointOwner": {"S": "kcl-w"},
        "throughputKBps": {"N": "1.5"},
        "pendingCheckpoint": {"S": "125"},
    }
    row = from_item(item)
    assert (row.lease_owner, row.lease_counter, row.checkpoint_owner, row.pending_checkpoint) == (
        "kcl-w",
        41,
        "kcl-w",
        "125",
    )
    assert row.position == "123:2"


def test_start_position_after_the_checkpoint_or_at_it_inside_an_aggregate() -> None:
    assert start_position("TRIM_HORIZON", 0) == ("TRIM_HORIZON", None)
    assert start_position("LATEST", 0) == ("LATEST", None)
    assert start_position("AT_TIMESTAMP", 0) == ("TRIM_HORIZON", None)
    assert start_position("4960", 0) == ("AFTER_SEQUENCE_NUMBER", "4960")
    assert start_position("4960", 3) == ("AT_SEQUENCE_NUMBER", "4960")


def test_a_lease_expires_only_after_its_counter_stood_still_for_failover() -> None:
    tracker = ExpiryTracker(failover_ms=1000)
    rows = [lease("a", "w1", 1), lease("b", "w2", 5), lease("c", None, 0)]
    assert tracker.expired(rows, now_ms=0) == set()
    assert tracker.expired(rows, now_ms=999) == set()
    rows[0] = lease("a", "w1", 2)  # w1 renewed
    assert tracker.expired(rows, now_ms=1000) == {"b"}
    assert tracker.expired(rows, now_ms=1999) == {"b"}
    assert tracker.expired(rows, now_ms=2000) == {"a", "b"}


def test_a_child_waits_for_every_parent_at_shard_end() -> None:
    parent_a, parent_b = lease("p1", checkpoint="SHARD_END"), lease("p2", checkpoint="99")
    child = lease("c", parent_shard_ids=("p1", "p2"))
    by_key = {x.lease_key: x for x in (parent_a, parent_b, child)}
    assert not is_ready(child, by_key, {"p1", "p2", "c"})
    assert is_ready(child, by_key, {"p1", "c"})  # p2 left the stream
    by_key["p2"] = lease("p2", checkpoint="SHARD_END")
    assert is_ready(child, by_key, {"p1", "p2", "c"})
    assert is_ready(lease("x", parent_shard_ids=("untracked",)), {}, {"untracked", "x"})


def test_a_new_worker_takes_free_leases_up_to_an_even_share() -> None:
    rows = [lease(f"s{i}") for i in range(4)]
    taken = plan_takes(rows, me="w1", held=set(), expired=set(), rng=random.Random(1))
    assert sorted(x.lease_key for x in taken) == ["s0", "s1", "s2", "s3"]
    capped = plan_takes(rows, me="w1", held=set(), expired=set(), max_leases=3, rng=random.Random(1))
    assert len(capped) == 3


def test_a_second_worker_steals_one_lease_per_pass_until_even() -> None:
    rows = [lease(f"s{i}", "w1") for i in range(4)]
    steal = plan_takes(rows, me="w2", held=set(), expired=set(), rng=random.Random(1))
    assert len(steal) == 1 and steal[0].lease_owner == "w1"
    rows = [lease("s0", "w2"), lease("s1", "w1"), lease("s2", "w1"), lease("s3", "w1")]
    assert len(plan_takes(rows, me="w2", held={"s0"}, expired=set())) == 1
    rows = [lease("s0", "w2"), lease("s1", "w2"), lease("s2", "w1"), lease("s3", "w1")]
    assert plan_takes(rows, me="w2", held={"s0", "s1"}, expired=set()) == []
    assert plan_takes(rows, me="w1", held={"s2", "s3"}, expired=set()) == []


def test_expired_leases_are_taken_before_anything_is_stolen() -> None:
    rows = [lease("s0", "w1"), lease("s1", "w1"), lease("s2", "dead"), lease("s3", "dead")]
    taken = plan_takes(rows, me="w2", held=set(), expired={"s2", "s3"}, rng=random.Random(2))
    assert sorted(x.lease_key for x in taken) == ["s2", "s3"]


def test_three_workers_on_four_leases_settle_without_flapping() -> None:
    rows = [lease("s0", "a"), lease("s1", "a"), lease("s2", "b"), lease("s3", "c")]
    assert plan_takes(rows, me="c", held={"s3"}, expired=set()) == []
    assert plan_takes(rows, me="b", held={"s2"}, expired=set()) == []


def test_parents_are_listed_before_children() -> None:
    shards = [
        Shard(shard_id="c1", parent_shard_id="p", adjacent_parent_shard_id="q"),
        Shard(shard_id="q"),
        Shard(shard_id="g", parent_shard_id="c1"),
        Shard(shard_id="p"),
    ]
    order = [s.shard_id for s in parents_first(shards)]
    assert order.index("p") < order.index("c1") < order.index("g")
    assert order.index("q") < order.index("c1")
