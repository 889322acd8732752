"""`checkpoints list|reset` against kinesalite (stream) and moto (lease table): rows written as the KCL writes them."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import boto3
import pytest

from tests.fixtures.aws import create_stream
from wenu_stream.aws.state import get_marker
from wenu_stream.cli.main import main
from wenu_stream.drivers.native.leases import Lease, LeaseTable, from_item, to_item
from wenu_stream.model import TRIM_HORIZON
from wenu_stream.ops import checkpoints as ops

pytestmark = pytest.mark.integration


def make_table(name: str) -> None:
    import asyncio

    from aiobotocore.session import get_session

    async def create() -> None:
        async with get_session().create_client("dynamodb") as client:
            await LeaseTable(client, name).ensure()

    asyncio.run(create())


def put_lease(table: str, lease: Lease, **extra: dict[str, Any]) -> None:
    boto3.client("dynamodb").put_item(TableName=table, Item=to_item(lease) | extra)


def rows(table: str) -> dict[str, dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    return {i["leaseKey"]["S"]: i for i in items}


def put(stream: str, n: int, tag: str) -> list[str]:
    kinesis = boto3.client("kinesis")
    out = kinesis.put_records(
        StreamName=stream, Records=[{"Data": f"{tag}{i}".encode(), "PartitionKey": "p"} for i in range(n)]
    )
    return [r["SequenceNumber"] for r in out["Records"]]


def arrival(stream: str, shard: str, sequence: str) -> dt.datetime:
    kinesis = boto3.client("kinesis")
    it = kinesis.get_shard_iterator(
        StreamName=stream,
        ShardId=shard,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=sequence,
    )["ShardIterator"]
    return kinesis.get_records(ShardIterator=it, Limit=1)["Records"][0]["ApproximateArrivalTimestamp"]


@pytest.fixture
def setup(aws_stack: object, unique_name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str]:
    """A one-shard stream with 30 records in two bursts and a lease table; env points the CLI at them."""
    (shard,) = create_stream(unique_name, 1)
    make_table(unique_name)
    for key, value in {
        "WENU_KINESIS_STREAM": unique_name,
        "WENU_LEASE_TABLE": unique_name,
        "WENU_SINKS_STATE_TABLE": f"{unique_name}-state",
        "WENU_LEASE_FAILOVER_MS": "1000",
    }.items():
        monkeypatch.setenv(key, value)
    return unique_name, unique_name, shard


@pytest.mark.slow
def test_list_shows_owner_counter_checkpoint_parents_and_lag(
    setup: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    stream, table, shard = setup
    seqs = put(stream, 12, "a")
    put_lease(
        table,
        Lease(
            lease_key=shard,
            lease_owner="w1",
            lease_counter=7,
            checkpoint=seqs[4],
            parent_shard_ids=("shardId-parent",),
        ),
    )
    status = ops.list_status(
        boto3.client("dynamodb"),
        boto3.client("kinesis"),
        table,
        stream,
        now_ms=int(time.time() * 1000),
        count=True,
    )
    assert [
        (s.shard_id, s.lease_owner, s.lease_counter, s.checkpoint, s.parent_shard_ids) for s in status
    ] == [(shard, "w1", 7, seqs[4], ("shardId-parent",))]
    lag = status[0].lag
    assert lag is not None and lag.records_behind == 7 and lag.next_record_age_ms is not None
    assert main(["checkpoints", "list"]) == 0
    out = capsys.readouterr().out
    assert (
        shard in out and "7 rec" not in out and seqs[4] in out
    )  # no --count: nothing read beyond one record
    put_lease(table, Lease(lease_key=shard, lease_counter=8, checkpoint=seqs[-1]))
    caught_up = ops.list_status(
        boto3.client("dynamodb"),
        boto3.client("kinesis"),
        table,
        stream,
        now_ms=int(time.time() * 1000),
        count=True,
    )[0].lag
    assert caught_up is not None and caught_up.records_behind == 0 and caught_up.next_record_age_ms is None


@pytest.mark.slow
def test_timestamp_resolves_to_the_record_just_before(
    setup: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    stream, table, shard = setup
    first = put(stream, 10, "a")
    time.sleep(0.3)  # two distinct arrival times (ordering, not a performance threshold)
    second = put(stream, 10, "b")
    put_lease(
        table, Lease(lease_key=shard, lease_owner="gone-worker", lease_counter=3, checkpoint=second[-1])
    )
    at = arrival(stream, shard, second[0])
    assert main(["checkpoints", "reset", "--to", "timestamp", at.isoformat()]) == 0
    row = rows(table)[shard]
    assert row["checkpoint"]["S"] == first[-1]  # processing resumes at second[0]
    assert row["leaseCounter"]["N"] == "4" and "leaseOwner" not in row
    assert f"resumes at {second[0]}" in capsys.readouterr().out
    before = arrival(stream, shard, first[0]) - dt.timedelta(seconds=30)  # before every record
    assert main(["checkpoints", "reset", "--to", "timestamp", before.isoformat()]) == 0
    assert rows(table)[shard]["checkpoint"]["S"] == TRIM_HORIZON


@pytest.mark.slow
def test_timestamp_after_every_record_checkpoints_the_last_one(
    use_kinesis_local: str, aws_stack: object, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kinesis-local: kinesalite never answers AT_TIMESTAMP when no record is at or after the time."""
    (shard,) = create_stream(unique_name, 1)
    make_table(unique_name)
    monkeypatch.setenv("WENU_KINESIS_STREAM", unique_name)
    monkeypatch.setenv("WENU_LEASE_TABLE", unique_name)
    monkeypatch.setenv("WENU_LEASE_FAILOVER_MS", "1000")
    seqs = put(unique_name, 5, "a")
    put_lease(unique_name, Lease(lease_key=shard, lease_counter=1, checkpoint=TRIM_HORIZON))
    later = arrival(unique_name, shard, seqs[-1]) + dt.timedelta(milliseconds=1)
    while dt.datetime.now(dt.UTC) <= later:  # the time must not be in the future
        time.sleep(0.01)
    assert main(["checkpoints", "reset", "--to", "timestamp", later.isoformat()]) == 0
    assert rows(unique_name)[shard]["checkpoint"]["S"] == seqs[-1]  # new records are processed


@pytest.mark.slow
def test_kcl3_row_is_reset_and_its_handoff_fields_cleared(setup: tuple[str, str, str]) -> None:
    stream, table, shard = setup
    seqs = put(stream, 5, "a")
    put_lease(
        table,
        Lease(
            lease_key=shard,
            lease_owner="kcl-worker",
            lease_counter=41,
            checkpoint=seqs[3],
            checkpoint_sub_sequence_number=2,
            owner_switches_since_checkpoint=1,
            checkpoint_owner="kcl-worker",
            pending_checkpoint=seqs[4],
        ),
        throughputKBps={"N": "1.5"},
        pendingCheckpointSubSequenceNumber={"N": "0"},
    )
    assert main(["checkpoints", "reset", "--to", "sequence", seqs[1], "--shard", shard]) == 0
    row = rows(table)[shard]
    lease = from_item(row)
    assert (lease.checkpoint, lease.checkpoint_sub_sequence_number, lease.lease_counter) == (seqs[1], 0, 42)
    assert lease.lease_owner is None and lease.checkpoint_owner is None and lease.pending_checkpoint is None
    assert "pendingCheckpointSubSequenceNumber" not in row and row["throughputKBps"] == {"N": "1.5"}


@pytest.mark.slow
def test_dry_run_and_refusals_change_nothing(
    setup: tuple[str, str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stream, table, shard = setup
    seqs = put(stream, 5, "a")
    put_lease(table, Lease(lease_key=shard, lease_counter=5, checkpoint=seqs[2]))
    before = rows(table)
    assert main(["checkpoints", "reset", "--to", "trim-horizon", "--dry-run"]) == 0
    assert f"{seqs[2]} -> TRIM_HORIZON" in capsys.readouterr().out
    too_old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)).isoformat()
    refusals = [
        (["--to", "timestamp", too_old], "retention"),
        (["--to", "timestamp", "2999-01-01T00:00:00Z"], "future"),
        (["--to", "timestamp", "yesterday"], "is not a time"),
        (["--to", "latest", "--shard", "shardId-999999999999"], "no lease for"),
        (["--to", "sequence", "12345", "--shard", shard], "not a position"),
        # well formed, accepted by GetShardIterator, but no record has it (yet): past the end of the shard
        (["--to", "sequence", str(int(seqs[-1]) + 2**64), "--shard", shard], "past the last record"),
        (["--to", "sequence", seqs[0]], "exactly one shard")
        if False
        else (["--to", "sequence", "x1"], "sequence"),
        (["--to", "sideways"], "unknown target"),
    ]
    for argv, message in refusals:
        assert main(["checkpoints", "reset", *argv]) == 2, argv
        assert message in capsys.readouterr().err, argv
    monkeypatch.setenv("WENU_LEASE_TABLE", table + "-missing")
    assert main(["checkpoints", "reset", "--to", "latest"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert rows(table) == before


def test_live_lease_refuses_unless_forced_and_writes_are_conditional(setup: tuple[str, str, str]) -> None:
    stream, table, shard = setup
    seqs = put(stream, 5, "a")
    put_lease(table, Lease(lease_key=shard, lease_owner="w1", lease_counter=1, checkpoint=seqs[4]))
    ddb, kinesis = boto3.client("dynamodb"), boto3.client("kinesis")

    def renew(_: float) -> None:  # a live worker renews during the liveness wait
        ddb.update_item(
            TableName=table,
            Key={"leaseKey": {"S": shard}},
            UpdateExpression="SET leaseCounter = :n",
            ExpressionAttributeValues={":n": {"N": "2"}},
        )

    now = dt.datetime.now(dt.UTC)
    plan = ops.plan_reset(
        ddb,
        kinesis,
        table=table,
        stream=stream,
        target=ops.Target("trim-horizon"),
        failover_s=1.0,
        wait=renew,
        now=now,
    )
    assert plan.live == [shard] and plan.steps[0].lease_counter == 2
    renew(0)  # no change: the counter is still 2
    ddb.update_item(
        TableName=table,
        Key={"leaseKey": {"S": shard}},
        UpdateExpression="SET leaseCounter = :n",
        ExpressionAttributeValues={":n": {"N": "3"}},
    )  # the worker renews after the plan
    result = ops.apply_reset(ddb, plan)
    assert result.conflicts == (shard,) and rows(table)[shard]["checkpoint"]["S"] == seqs[4]
    idle = ops.plan_reset(
        ddb,
        kinesis,
        table=table,
        stream=stream,
        target=ops.Target("trim-horizon"),
        failover_s=0,
        wait=lambda _: None,
        now=now,
    )
    assert idle.live == [] and ops.apply_reset(ddb, idle).written == (shard,)
    assert rows(table)[shard]["checkpoint"]["S"] == TRIM_HORIZON


@pytest.mark.slow
def test_rebuild_writes_a_marker_per_shard_with_rising_generations(setup: tuple[str, str, str]) -> None:
    stream, table, shard = setup
    from wenu_stream.aws.provision import ensure_table
    from wenu_stream.aws.tables import STATE

    ensure_table(STATE, f"{table}-state")
    seqs = put(stream, 3, "a")
    put_lease(table, Lease(lease_key=shard, lease_counter=1, checkpoint=seqs[2]))
    for generation in (1, 2):
        assert main(["checkpoints", "reset", "--to", "trim-horizon", "--rebuild"]) == 0
        marker = get_marker(boto3.client("dynamodb"), f"{table}-state", "processing", stream, shard)
        assert marker is not None and marker.generation == generation
        assert marker.from_checkpoint == TRIM_HORIZON and marker.applies(TRIM_HORIZON)
        assert not marker.applies(seqs[2])


@pytest.mark.slow
def test_a_checkpoint_on_the_last_user_record_of_an_aggregate_is_caught_up(
    setup: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The KCL checkpoints (sequence, sub) inside an aggregate; on its last user record nothing is left to do."""
    from wenu_stream.records.encoding import aggregate

    stream, table, shard = setup
    data = aggregate([("p", b"one"), ("p", b"two"), ("p", b"three")])
    (seq,) = [r["SequenceNumber"] for r in boto3.client("kinesis").put_records(
        StreamName=stream, Records=[{"Data": data, "PartitionKey": "p"}])["Records"]]  # fmt: skip
    for sub, behind in ((2, False), (1, True)):
        put_lease(table, Lease(lease_key=shard, lease_owner="kcl", lease_counter=3, checkpoint=seq,
                               checkpoint_sub_sequence_number=sub))  # fmt: skip
        assert main(["checkpoints", "list", "-o", "jsonl"]) == 0
        (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert row["sub_sequence_number"] == sub
        assert (row["lag"]["next_record_age_ms"] is not None) is behind, row  # sub 1: "three" still waits
        assert main(["checkpoints", "list"]) == 0
        table_out = capsys.readouterr().out
        assert ("caught up" in table_out) is not behind, table_out
