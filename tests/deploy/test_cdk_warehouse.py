"""The warehouse in production: Redshift, the scheduled `warehouse load` task, the Pushgateway it pushes to."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deploy.conftest import Synthesised
from tests.deploy.test_cdk_stack import allows, only, resources, role_statements

pytestmark = pytest.mark.cdk


@pytest.fixture(scope="module")
def t(stages: dict[str, Synthesised]) -> dict[str, Any]:
    return stages["dev"].json


def env_of(t: dict[str, Any], family: str) -> dict[str, Any]:
    _id, task = only(t, "AWS::ECS::TaskDefinition", Family=family)
    return {e["Name"]: e["Value"] for e in task["Properties"]["ContainerDefinitions"][0]["Environment"]}


def test_scheduler_runs_the_load_task_every_15_minutes_on_fargate(t: dict[str, Any]) -> None:
    _id, schedule = only(t, "AWS::Scheduler::Schedule", Name="wenu-dev-warehouse-load")
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "rate(15 minutes)" and props["State"] == "ENABLED"
    target = props["Target"]
    task_id, task = only(t, "AWS::ECS::TaskDefinition", Family="wenu-dev-warehouse-load")
    assert target["EcsParameters"]["TaskDefinitionArn"] == {"Ref": task_id}
    assert target["EcsParameters"]["LaunchType"] == "FARGATE"
    assert (
        target["EcsParameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    )
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    container = task["Properties"]["ContainerDefinitions"][0]
    assert container["Command"] == ["--", "wenu-stream", "warehouse", "load"]


def test_load_task_targets_the_stage_cluster_with_the_copy_role_and_the_pushgateway(
    t: dict[str, Any],
) -> None:
    cluster_id, cluster = only(t, "AWS::Redshift::Cluster", ClusterIdentifier="wenu-dev-warehouse")
    role_id, _ = only(t, "AWS::IAM::Role", RoleName="wenu-dev-redshift-copy")
    env = env_of(t, "wenu-dev-warehouse-load")
    assert env["WENU_WAREHOUSE_TARGET"] == "redshift"
    assert env["WENU_WAREHOUSE_REDSHIFT_CLUSTER"] == "wenu-dev-warehouse"
    assert env["WENU_WAREHOUSE_REDSHIFT_IAM_ROLE"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert env["WENU_WAREHOUSE_REDSHIFT_SECRET_ARN"] == {
        "Fn::GetAtt": [cluster_id, "MasterPasswordSecretArn"]
    }
    assert env["WENU_WAREHOUSE_PUSHGATEWAY"] == "http://pushgateway.wenu-dev.internal:9091"
    props = cluster["Properties"]
    assert props["Encrypted"] is True and props["PubliclyAccessible"] is False
    assert props["EnhancedVpcRouting"] is True and props["ManageMasterPassword"] is True
    assert props["IamRoles"] == [{"Fn::GetAtt": [role_id, "Arn"]}]
    assert cluster["DeletionPolicy"] == "Snapshot"


def test_copy_role_reads_only_staged_files_and_manifests(t: dict[str, Any]) -> None:
    role = role_statements(t, "wenu-dev-redshift-copy")
    assert allows(role, "s3:GetObject", "/staging/*") and allows(role, "s3:GetObject", "/manifests/*")
    assert not allows(role, "s3:GetObject", "/dead-letter/") and not allows(role, "s3:PutObject", "/")
    _id, copy = only(t, "AWS::IAM::Role", RoleName="wenu-dev-redshift-copy")
    principals = json.dumps(copy["Properties"]["AssumeRolePolicyDocument"])
    assert "redshift.amazonaws.com" in principals


def test_load_role_uses_the_data_api_on_its_cluster_and_writes_only_manifests(t: dict[str, Any]) -> None:
    role = role_statements(t, "wenu-dev-warehouse-load-task")
    assert allows(role, "redshift-data:ExecuteStatement", "cluster:wenu-dev-warehouse")
    assert not allows(role, "redshift-data:ExecuteStatement", "cluster:wenu-prod-warehouse")
    assert allows(role, "s3:PutObject", "/manifests/*") and not allows(role, "s3:PutObject", "/staging/")
    assert allows(role, "s3:GetObject", "/staging/*")
    own = next(s for s in role if "redshift-data:DescribeStatement" in s["Action"])
    assert own["Condition"] == {"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}}
    assert not any(
        str(a).startswith(("dynamodb:", "kinesis:", "kms:", "sns:")) for s in role for a in s["Action"]
    )


def test_pushgateway_runs_as_a_service_named_in_the_stage_namespace(t: dict[str, Any]) -> None:
    _id, _namespace = only(t, "AWS::ServiceDiscovery::PrivateDnsNamespace", Name="wenu-dev.internal")
    _id, service = only(t, "AWS::ECS::Service", ServiceName="wenu-dev-pushgateway")
    registry = service["Properties"]["ServiceRegistries"][0]["RegistryArn"]["Fn::GetAtt"][0]
    assert t["Resources"][registry]["Properties"]["Name"] == "pushgateway"
    _id, task = only(t, "AWS::ECS::TaskDefinition", Family="wenu-dev-pushgateway")
    container = task["Properties"]["ContainerDefinitions"][0]
    assert container["Image"].startswith("prom/pushgateway:")
    assert "--persistence.file=/tmp/pushgateway.db" in container["Command"]
    assert container["ReadonlyRootFilesystem"] is True and container["User"] == "65534"


SECRET = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:warehouse-loader-AbCdEf"


@pytest.fixture(scope="module")
def variant(stages: dict[str, Synthesised]) -> dict[str, Any]:
    """A third stage with the other settings: a referenced warehouse, consumers stopped (a first deploy)."""
    import aws_cdk as cdk
    from wenu_cdk.stack import StackSettings, WenuStack

    app = cdk.App(context={"aws:cdk:enable-path-metadata": False})
    settings = StackSettings(
        stage="ref", redshift_workgroup="analytics", redshift_secret_arn=SECRET, consumers_stopped=True
    )
    stack = WenuStack(app, "WenuStream-ref", settings=settings)
    return app.synth().get_stack_by_name(stack.stack_name).template  # type: ignore[no-any-return]


@pytest.mark.slow
def test_an_existing_warehouse_is_referenced_and_nothing_is_created(variant: dict[str, Any]) -> None:
    """wenu:redshiftWorkgroup + wenu:redshiftSecretArn: no cluster, the load task points at the workgroup."""
    from wenu_cdk.naming import SettingError
    from wenu_cdk.stack import StackSettings

    assert not resources(variant, "AWS::Redshift::Cluster")
    env = env_of(variant, "wenu-ref-warehouse-load")
    assert env["WENU_WAREHOUSE_REDSHIFT_WORKGROUP"] == "analytics"
    assert env["WENU_WAREHOUSE_REDSHIFT_SECRET_ARN"] == SECRET
    assert "WENU_WAREHOUSE_REDSHIFT_CLUSTER" not in env
    with pytest.raises(SettingError, match="wenu:redshiftSecretArn"):
        StackSettings(stage="ref2", redshift_workgroup="analytics")


def test_stopped_consumers_run_no_task_and_do_not_scale(variant: dict[str, Any]) -> None:
    """The first deploy (-c wenu:consumersStopped=true): the key ring is not there yet, so no consumer starts."""
    for app in ("alarms", "processing"):
        _id, service = only(variant, "AWS::ECS::Service", ServiceName=f"wenu-ref-{app}")
        assert service["Properties"]["DesiredCount"] == 0
    targets = resources(variant, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert [t["Properties"]["MinCapacity"] for t in targets.values()] == [2]  # the API's only
