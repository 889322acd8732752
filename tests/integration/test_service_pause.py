"""`wenu-stream service pause|resume` on ECS, Application Auto Scaling and a lease table of the local stack.

A worker that was told to stop keeps renewing its lease for a moment (it flushes, checkpoints, then
gives up): pause returns only once that lease stopped moving for the failover time. Another worker that
never stops makes pause fail (exit 1) instead of letting a reset run under it.
"""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest

from wenu_stream.cli.main import main
from wenu_stream.drivers.native.leases import Lease, to_item
from wenu_stream.ops.service import TAG

pytestmark = pytest.mark.integration


def service(name: str, desired: int = 2) -> tuple[str, str]:
    """A cluster, a Fargate service with ``desired`` tasks and its scalable target (min 1, max 4)."""
    ecs = boto3.client("ecs")
    ecs.create_cluster(clusterName=name)
    ecs.register_task_definition(
        family=name,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "app", "image": "wenu-stream:test", "memory": 512}],
    )
    arn = ecs.create_service(cluster=name, serviceName=name, taskDefinition=name, desiredCount=desired)[
        "service"
    ]["serviceArn"]
    boto3.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{name}/{name}",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=1,
        MaxCapacity=4,
    )
    return name, arn


def leases(table: str, owned: dict[str, int]) -> None:
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    for key, counter in owned.items():
        ddb.put_item(
            TableName=table, Item=to_item(Lease(lease_key=key, lease_owner="w1", lease_counter=counter))
        )
    ddb.put_item(TableName=table, Item=to_item(Lease(lease_key="shardId-free")))


def renew(table: str, key: str, stop: threading.Event) -> None:
    """A worker still renewing one lease until ``stop``."""
    ddb = boto3.client("dynamodb")
    while not stop.wait(0.2):
        ddb.update_item(
            TableName=table, Key={"leaseKey": {"S": key}}, UpdateExpression="ADD leaseCounter :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )  # fmt: skip


def scaling_state(name: str) -> dict[str, bool]:
    (target,) = boto3.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[f"service/{name}/{name}"]
    )["ScalableTargets"]
    return target["SuspendedState"]  # type: ignore[no-any-return]


def test_pause_suspends_scaling_stops_tasks_waits_for_the_leases_and_resume_restores_both(
    aws_stack: object, unique_name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster, arn = service(unique_name)
    table = f"{unique_name}-leases"
    leases(table, {"shardId-0": 5, "shardId-1": 9})
    monkeypatch.setenv("WENU_LEASE_TABLE", table)
    monkeypatch.setenv("WENU_LEASE_FAILOVER_MS", "1000")
    stop = threading.Event()
    worker = threading.Thread(target=renew, args=(table, "shardId-1", stop))
    worker.start()
    threading.Timer(1.5, stop.set).start()  # the stopping worker's last renewals
    started = time.monotonic()
    try:
        code = main(
            ["service", "pause", "--app", "processing", "--cluster", cluster, "--service", unique_name]
        )
    finally:
        stop.set()
        worker.join()
    took = time.monotonic() - started
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {
        "service": unique_name, "desired_before": 2, "scaling_suspended": True, "leases_free": True,
    }  # fmt: skip
    assert took >= 2.5  # 1.5 s of renewals, then 1 s without a move
    ecs = boto3.client("ecs")
    (described,) = ecs.describe_services(cluster=cluster, services=[unique_name])["services"]
    assert described["desiredCount"] == 0
    assert {"key": TAG, "value": "2"} in ecs.list_tags_for_resource(resourceArn=arn)["tags"]
    assert all(scaling_state(unique_name).values())

    assert (
        main(["service", "resume", "--app", "processing", "--cluster", cluster, "--service", unique_name])
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {
        "service": unique_name,
        "desired": 2,
        "scaling_resumed": True,
    }
    (described,) = ecs.describe_services(cluster=cluster, services=[unique_name])["services"]
    assert described["desiredCount"] == 2
    assert all(t["key"] != TAG for t in ecs.list_tags_for_resource(resourceArn=arn)["tags"])
    assert not any(scaling_state(unique_name).values())


def test_pause_fails_while_a_lease_keeps_being_renewed(
    aws_stack: object, unique_name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster, _arn = service(unique_name, desired=1)
    table = f"{unique_name}-leases"
    leases(table, {"shardId-0": 1})
    monkeypatch.setenv("WENU_LEASE_TABLE", table)
    monkeypatch.setenv("WENU_LEASE_FAILOVER_MS", "1000")
    stop = threading.Event()
    worker = threading.Thread(target=renew, args=(table, "shardId-0", stop))
    worker.start()
    try:
        argv = ["service", "pause", "--cluster", cluster, "--service", unique_name, "--timeout", "3"]
        assert main(argv) == 1
    finally:
        stop.set()
        worker.join()
    assert "shardId-0" in capsys.readouterr().err


def test_an_unknown_service_exits_4_naming_it(
    aws_stack: object, unique_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("ecs").create_cluster(clusterName=unique_name)
    assert main(["service", "resume", "--cluster", unique_name, "--service", "nope"]) == 4
    assert "'nope'" in capsys.readouterr().err
