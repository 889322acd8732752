"""Stages side by side: two copies of the stack in one account and region share no physical name.

Both stages come from one app and one synthesis (``conftest.stages``), as two ``cdk deploy -c stage=...``
into one account would produce. Every property that is a physical name is listed in ``PHYSICAL``;
a resource that gains a name property not listed there (or in ``NOT_PHYSICAL`` with its reason)
fails ``test_every_name_property_is_classified``, so a new named resource cannot slip in unprefixed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.deploy.conftest import CDK_DIR, ROOT, STAGES, Synthesised
from wenu_stream.config import LEAVES, env_name

pytestmark = pytest.mark.cdk

# (resource type, property path) -> a physical name an account or region holds once.
PHYSICAL = {
    ("AWS::DynamoDB::GlobalTable", "TableName"),
    ("AWS::Kinesis::Stream", "Name"),
    ("AWS::SNS::Topic", "TopicName"),
    ("AWS::KMS::Alias", "AliasName"),
    ("AWS::KinesisFirehose::DeliveryStream", "DeliveryStreamName"),
    ("AWS::IoT::TopicRule", "RuleName"),
    ("AWS::IoT::TopicRule", "TopicRulePayload.Sql"),  # the topic filter meters publish on
    ("AWS::ECS::Service", "ServiceName"),
    ("AWS::ECS::TaskDefinition", "Family"),
    ("AWS::IAM::Role", "RoleName"),
    ("AWS::Logs::LogGroup", "LogGroupName"),
    ("AWS::SecretsManager::Secret", "Name"),
    ("AWS::RDS::DBInstance", "DBInstanceIdentifier"),
    ("AWS::Redshift::Cluster", "ClusterIdentifier"),
    ("AWS::Scheduler::Schedule", "Name"),
    ("AWS::ServiceDiscovery::PrivateDnsNamespace", "Name"),
    ("AWS::APS::Workspace", "Alias"),
}
# Name-like properties that are not account-wide names, and why.
NOT_PHYSICAL = {
    ("AWS::SNS::Topic", "DisplayName"): "a label shown in notifications, not unique",
    ("AWS::IAM::Policy", "PolicyName"): "an inline policy's name, unique within its role only",
    ("AWS::ApplicationAutoScaling::ScalingPolicy", "PolicyName"): "unique within its scalable target only",
    ("AWS::CloudWatch::Alarm", "MetricName"): "the metric read (the stage is in its StreamName dimension)",
    ("AWS::RDS::DBInstance", "DBName"): "a database inside the instance",
    ("AWS::RDS::DBParameterGroup", "Family"): "the engine family (postgres16)",
    ("Custom::WenuCatalogMigration", "Name"): "the custom resource's physical id, within the stack",
    ("AWS::Redshift::Cluster", "DBName"): "a database inside the cluster",
    ("AWS::ServiceDiscovery::Service", "Name"): "a name inside the stage's DNS namespace",
    ("AWS::APS::RuleGroupsNamespace", "Name"): "a name inside the stage's Prometheus workspace",
}
# Settings whose value is a physical name: every task must set each of them (else it would use the
# application's default, shared by every stage).
NAME_SETTINGS = sorted(
    env_name(p)
    for p in LEAVES
    if p.rsplit(".", 1)[-1] in {"stream", "table", "topic_name"} or p.endswith("_table")
)


def _get(props: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        props = props.get(part) if isinstance(props, dict) else None  # type: ignore[assignment]
    return props


def _name_properties(resource: dict[str, Any]) -> list[str]:
    """Top-level properties that look like a name given as a literal string."""
    return [
        k
        for k, v in resource.get("Properties", {}).items()
        if isinstance(v, str) and (k in ("Name", "Family") or k.endswith(("Name", "Identifier")))
    ]


def _containers(t: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c
        for r in t["Resources"].values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
        for c in r["Properties"]["ContainerDefinitions"]
    ]


def _resolve(t: dict[str, Any], value: Any) -> str:
    """The literal name behind an environment value: a string, a Ref or GetAtt of a named resource."""
    if isinstance(value, str):
        return value
    resource = t["Resources"][value["Ref"]] if "Ref" in value else t["Resources"][value["Fn::GetAtt"][0]]
    names = [_get(resource["Properties"], path) for kind, path in PHYSICAL if kind == resource["Type"]]
    assert names and isinstance(names[0], str), (value, resource["Type"])
    return names[0]


def physical_names(synth: Synthesised) -> list[tuple[str, str]]:
    """Every physical name of the template (and the names its tasks are told), with where it comes from."""
    t = synth.json
    found: list[tuple[str, str]] = []
    for logical_id, resource in t["Resources"].items():
        for kind, path in PHYSICAL:
            value = _get(resource.get("Properties", {}), path) if resource["Type"] == kind else None
            if value is not None:
                assert isinstance(value, str), (logical_id, path, value)
                found.append((value, f"{logical_id}.{path}"))
    for container in _containers(t):
        for e in container.get("Environment", []):
            if e["Name"] in NAME_SETTINGS:
                found.append((_resolve(t, e["Value"]), f"{container['Name']} env {e['Name']}"))
    return found


def test_two_stages_share_no_physical_name(stages: dict[str, Synthesised]) -> None:
    dev, prod = (physical_names(stages[s]) for s in STAGES)
    shared = sorted({name for name, _ in dev} & {name for name, _ in prod})
    assert not shared, [(where, name) for name, where in dev + prod if name in shared]
    resources = [where for _name, where in dev if " env " not in where]
    assert len(resources) >= 19, resources  # the issue counted 19 fixed names on main


@pytest.mark.parametrize("stage", STAGES)
def test_every_physical_name_carries_its_stage(stages: dict[str, Synthesised], stage: str) -> None:
    marks = (f"wenu-{stage}-", f"wenu_{stage}_", f"wenu/{stage}/", f"alias/wenu-{stage}-", f"wenu-{stage}.")
    for name, where in physical_names(stages[stage]):
        assert any(mark in name for mark in marks), (name, where)
    assert stages[stage].stack.stack_name == f"WenuStream-{stage}"


def test_every_name_property_is_classified(synth: Synthesised) -> None:
    """A resource with a literal name nobody classified fails here: prefix it (naming.Names) and list it."""
    unknown = sorted(
        (r["Type"], k)
        for r in synth.json["Resources"].values()
        for k in _name_properties(r)
        if (r["Type"], k) not in PHYSICAL and (r["Type"], k) not in NOT_PHYSICAL
    )
    assert not unknown, unknown


@pytest.mark.parametrize("stage", STAGES)
def test_every_task_is_told_every_name_of_its_stage(stages: dict[str, Synthesised], stage: str) -> None:
    """Each container sets every WENU_* name setting, and each names a resource of its own stage."""
    t = stages[stage].json
    containers = [
        c for c in _containers(t) if any(e["Name"].startswith("WENU_") for e in c.get("Environment", []))
    ]
    assert containers
    for container in containers:
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert sorted(set(NAME_SETTINGS) - set(env)) == [], container["Name"]
        for setting in NAME_SETTINGS:
            assert _resolve(t, env[setting]).startswith(f"wenu-{stage}-"), (container["Name"], setting)


def test_lease_tables_in_the_roles_are_those_the_tasks_use(synth: Synthesised) -> None:
    """The KCL tables a task role may create are named after the WENU_LEASE_TABLE of its task."""
    text = json.dumps(synth.json)
    for app in ("alarms", "processing"):
        assert f"table/wenu-dev-{app}-CoordinatorState" in text
    leases = {
        c["Name"]: next(e["Value"] for e in c["Environment"] if e["Name"] == "WENU_LEASE_TABLE")
        for c in _containers(synth.json)
        if c["Name"] in ("alarms", "processing")
    }
    assert leases == {"alarms": "wenu-dev-alarms", "processing": "wenu-dev-processing"}


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"stage": "Prod"}, "stage='Prod'"),
        ({"stage": "dev-1"}, "stage='dev-1'"),
        ({"wenu:shards": "x"}, "wenu:shards"),
    ],
)
@pytest.mark.slow
def test_a_bad_setting_exits_2_naming_it_and_the_fix(context: dict[str, str], named: str) -> None:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "PYTHONPATH": str(ROOT)}
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
    run = subprocess.run(
        [sys.executable, "app.py"],
        cwd=CDK_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    message = run.stderr.strip().splitlines()[-1]
    assert message.startswith("wenu-cdk: ") and named in message and "fix: " in message


@pytest.mark.parametrize("stage", STAGES)
def test_every_wenu_variable_of_every_task_is_a_setting_of_the_application(
    stages: dict[str, Synthesised], stage: str
) -> None:
    """A typo in a WENU_* name would stop the task at start-up (unknown setting): caught at synthesis instead."""
    known = {env_name(p) for p in LEAVES}
    for container in _containers(stages[stage].json):
        unknown = {
            e["Name"] for e in container.get("Environment", []) if e["Name"].startswith("WENU_")
        } - known
        assert not unknown, (container["Name"], unknown)
