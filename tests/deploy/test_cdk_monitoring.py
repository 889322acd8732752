"""Prometheus for real in the stack: the collector finds every scraped service, writes to AMP, alerts reach SNS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import ROOT, Synthesised
from tests.deploy.test_cdk_stack import only, resources

pytestmark = pytest.mark.cdk
RULES = ROOT / "deploy" / "prometheus" / "wenu-alerts.yml"
# service -> (the name its tasks get in Cloud Map, the port the collector scrapes)
SCRAPED = {
    "wenu-dev-alarms": ("alarms", 9100),
    "wenu-dev-processing": ("processing", 9100),
    "wenu-dev-api": ("api", 8080),
    "wenu-dev-pushgateway": ("pushgateway", 9091),
}


@pytest.fixture(scope="module")
def t(stages: dict[str, Synthesised]) -> dict[str, Any]:
    return stages["dev"].json


def collector_config(t: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The agent configuration of the collector task: YAML with the remote-write URL left as a token."""
    _id, task = only(t, "AWS::ECS::TaskDefinition", Family="wenu-dev-collector")
    env = task["Properties"]["ContainerDefinitions"][0]["Environment"]
    value = next(e["Value"] for e in env if e["Name"] == "PROMETHEUS_AGENT_CONFIG")
    parts = value["Fn::Join"][1]  # literal text with CloudFormation tokens (region, workspace endpoint)
    text = "".join(p if isinstance(p, str) else "TOKEN" for p in parts)
    return yaml.safe_load(text), parts


@pytest.mark.parametrize("service_name", sorted(SCRAPED))
def test_every_scraped_service_registers_where_the_collector_looks(
    t: dict[str, Any], service_name: str
) -> None:
    record, port = SCRAPED[service_name]
    _id, service = only(t, "AWS::ECS::Service", ServiceName=service_name)
    registry = t["Resources"][service["Properties"]["ServiceRegistries"][0]["RegistryArn"]["Fn::GetAtt"][0]]
    assert registry["Properties"]["Name"] == record
    assert registry["Properties"]["DnsConfig"]["DnsRecords"] == [{"TTL": 10, "Type": "A"}]
    task = t["Resources"][service["Properties"]["TaskDefinition"]["Ref"]]
    ports = [
        p["ContainerPort"]
        for c in task["Properties"]["ContainerDefinitions"]
        for p in c.get("PortMappings", [])
    ]
    assert port in ports
    config, _parts = collector_config(t)
    discovered = {
        (name, sd["port"])
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    assert (f"{record}.wenu-dev.internal", port) in discovered


def test_collector_remote_writes_to_the_stage_workspace_with_sigv4_and_may_do_nothing_else(
    t: dict[str, Any],
) -> None:
    workspace_id, _workspace = only(t, "AWS::APS::Workspace", Alias="wenu-dev-metrics")
    config, parts = collector_config(t)
    assert config["global"]["external_labels"] == {"stage": "dev"}
    (write,) = config["remote_write"]
    assert "sigv4" in write and write["url"].endswith("api/v1/remote_write")
    assert {"Fn::GetAtt": [workspace_id, "PrometheusEndpoint"]} in parts
    _id, _role = only(t, "AWS::IAM::Role", RoleName="wenu-dev-collector-task")
    policies = [
        p for p in resources(t, "AWS::IAM::Policy").values() if {"Ref": _id} in p["Properties"]["Roles"]
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert statements == [
        {"Action": "aps:RemoteWrite", "Effect": "Allow", "Resource": {"Fn::GetAtt": [workspace_id, "Arn"]}}
    ]
    job_names = [job["job_name"] for job in config["scrape_configs"]]
    assert job_names == ["wenu-alarms", "wenu-processing", "wenu-api", "wenu-pushgateway", "wenu-collector"]


def test_workspace_evaluates_the_tested_rules_and_alerts_the_ops_topic(t: dict[str, Any]) -> None:
    workspace_id, workspace = only(t, "AWS::APS::Workspace", Alias="wenu-dev-metrics")
    _id, rules = only(t, "AWS::APS::RuleGroupsNamespace")
    assert rules["Properties"]["Data"] == RULES.read_text(encoding="utf-8")  # the file promtool tests
    assert rules["Properties"]["Workspace"] == {"Fn::GetAtt": [workspace_id, "Arn"]}
    topic_id, _ = only(t, "AWS::SNS::Topic", TopicName="wenu-dev-ops-alerts")
    definition = json.dumps(workspace["Properties"]["AlertManagerDefinition"])
    assert topic_id in definition and "sns_configs" in definition
    policy = next(
        p
        for p in resources(t, "AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in p["Properties"]["Topics"]
    )
    statement = next(
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "ManagedPrometheusAlerts"
    )
    assert statement["Principal"] == {"Service": "aps.amazonaws.com"} and "aws:SourceAccount" in json.dumps(
        statement
    )


def test_the_agent_configuration_file_is_the_one_the_stack_renders() -> None:
    """The placeholders of deploy/prometheus/agent.yml are exactly those monitoring.agent_config fills."""
    import re

    text = (Path(ROOT) / "deploy" / "prometheus" / "agent.yml").read_text()
    assert set(re.findall(r"\$\{(\w+)\}", text)) == {"STAGE", "NAMESPACE", "REGION", "REMOTE_WRITE_URL"}


def test_stream_read_throttling_alarms_the_ops_topic(t: dict[str, Any]) -> None:
    """The KCL daemon's reads have no Prometheus counter: the stream's CloudWatch metric covers them."""
    topic_id, _ = only(t, "AWS::SNS::Topic", TopicName="wenu-dev-ops-alerts")
    alarm = next(
        a for k, a in resources(t, "AWS::CloudWatch::Alarm").items() if k.startswith("StreamReadsThrottled")
    )
    assert alarm["Properties"]["MetricName"] == "ReadProvisionedThroughputExceeded"
    assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
