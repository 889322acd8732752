"""The deploy-time task runner (deploy/cdk/wenu_cdk/run_task_handler.py): start a task, wait for its exit code.

The start and the polling run against ECS on the local stack (moto: RunTask on Fargate, DescribeTasks,
StopTask; its stopped containers report exit code 0). The failure outcomes moto cannot produce (a
non-zero exit, a task that never started its container) are DescribeTasks answers given as data.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

HANDLER = Path(__file__).resolve().parents[2] / "deploy" / "cdk" / "wenu_cdk" / "run_task_handler.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_task_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # builds its client from the SDK environment, as in Lambda
    return module


def test_outcome_waits_while_running_and_accepts_only_exit_code_0() -> None:
    outcome = load().outcome
    arn = "arn:aws:ecs:eu-west-1:1:task/c/t"
    assert outcome({"lastStatus": "PROVISIONING"}, arn) is False
    assert outcome({"lastStatus": "RUNNING", "containers": [{"name": "migrate"}]}, arn) is False
    assert outcome({"lastStatus": "STOPPED", "containers": [{"name": "migrate", "exitCode": 0}]}, arn) is True
    with pytest.raises(
        RuntimeError, match=r"failed: Essential container in task exited; exit codes \{'migrate': 1\}"
    ):
        outcome(
            {
                "lastStatus": "STOPPED",
                "stoppedReason": "Essential container in task exited",
                "containers": [{"name": "migrate", "exitCode": 1}],
            },
            arn,
        )
    with pytest.raises(RuntimeError, match="CannotPullContainerError"):  # never ran: no exit code
        outcome(
            {
                "lastStatus": "STOPPED",
                "stoppedReason": "CannotPullContainerError",
                "containers": [{"name": "m"}],
            },
            arn,
        )
    with pytest.raises(RuntimeError, match="unknown to ECS"):
        outcome(None, arn)


@pytest.mark.slow
@pytest.mark.integration
def test_create_starts_the_task_and_completes_when_it_has_stopped_with_0(
    aws_stack: Any, unique_name: str
) -> None:
    ecs, ec2 = boto3.client("ecs"), boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as the stack's VPC
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(VpcId=vpc, GroupName=unique_name, Description="test")["GroupId"]
    cluster = ecs.create_cluster(clusterName=unique_name)["cluster"]["clusterArn"]
    task_definition = ecs.register_task_definition(
        family=unique_name,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        # container memory: moto sums it to place the task (ECS does not need it with a task size)
        containerDefinitions=[
            {"name": "migrate", "image": "wenu-stream:test", "essential": True, "memory": 512}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    props = {
        "Name": "wenu-test-catalog-migration",
        "Cluster": cluster,
        "TaskDefinition": task_definition,
        "Subnets": [subnet],
        "SecurityGroups": [group],
    }
    handler = load()
    created = handler.on_event({"RequestType": "Create", "ResourceProperties": props}, None)
    assert created["PhysicalResourceId"] == "wenu-test-catalog-migration"
    task = created["Data"]["TaskArn"]
    (described,) = ecs.describe_tasks(cluster=cluster, tasks=[task])["tasks"]
    assert described["taskDefinitionArn"] == task_definition and described["launchType"] == "FARGATE"
    assert described["startedBy"] == "cfn-deploy"

    polled = {"RequestType": "Create", "ResourceProperties": props, **created}
    assert handler.is_complete(polled, None) == {"IsComplete": False}
    ecs.stop_task(cluster=cluster, task=task, reason="done")  # the container exits (0 on moto)
    assert handler.is_complete(polled, None) == {"IsComplete": True}

    update = {
        "RequestType": "Update",
        "ResourceProperties": props,
        "PhysicalResourceId": created["PhysicalResourceId"],
    }
    assert handler.on_event(update, None)["Data"]["TaskArn"] != task  # each deploy of a new revision runs it
    delete = {
        "RequestType": "Delete",
        "ResourceProperties": props,
        "PhysicalResourceId": "wenu-test-catalog-migration",
    }
    before = len(ecs.list_tasks(cluster=cluster)["taskArns"])
    assert handler.on_event(delete, None) == {"PhysicalResourceId": "wenu-test-catalog-migration"}
    assert handler.is_complete(delete, None) == {"IsComplete": True}
    assert len(ecs.list_tasks(cluster=cluster)["taskArns"]) == before  # a delete starts nothing
