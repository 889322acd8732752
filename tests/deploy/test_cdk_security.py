"""Security findings of both stages: cdk-nag AwsSolutions and cfn-lint over the synthesised templates.

cdk-nag runs as in ``deploy/cdk/app.py`` (an aspect over the app), in its own synthesis of both stages
next to a canary stack that must be flagged (so the check is live). Any finding that is neither fixed
nor acknowledged with a reason in ``wenu_cdk/nag.py`` fails here. cfn-lint reads the templates the
session's synthesis wrote; only the two warnings CDK's own constructs produce are ignored.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import SETTINGS, STAGES, Synthesised

pytestmark = pytest.mark.cdk
NAG = r"(AwsSolutions-|CdkNagValidationFailure).*"
# cfn-lint checks ignored, and why: both come from aws-cdk-lib's own constructs, not from this stack.
IGNORED_LINT = {
    "W3005": "CDK adds DependsOn on a Lambda's role next to the GetAtt of it (and on an ALB's target group)",
    "W7001": "aws-kinesisfirehose declares a CIDR mapping it uses only for HTTP endpoint destinations",
}
# Rules acknowledged in wenu_cdk/nag.py; a new one must be added here on purpose, with its reason there.
ACKNOWLEDGED = {
    "AwsSolutions-IAM4",
    "AwsSolutions-IAM5",
    "AwsSolutions-ECS2",
    "AwsSolutions-KDF1",
    "AwsSolutions-SMG4",
    "AwsSolutions-RDS11",
    "AwsSolutions-RDS3",
    "AwsSolutions-RS4",
    "AwsSolutions-SQS3",
    "AwsSolutions-SF1",
    "AwsSolutions-SF2",
    "AwsSolutions-EC23",
    "AwsSolutions-ELB2",
    "CdkNagValidationFailure",
}


@pytest.fixture(scope="module")
def nagged(stages: dict[str, Synthesised]) -> dict[str, Any]:
    """Both stages and a canary, synthesised with the AwsSolutions checks: stage -> (stack, template)."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks
    from wenu_cdk.stack import StackSettings, WenuStack

    app = cdk.App(context={"aws:cdk:enable-path-metadata": False})
    stacks = {
        stage: WenuStack(app, f"Nag-{stage}", settings=StackSettings(stage=stage, **SETTINGS[stage]))
        for stage in STAGES
    }
    canary = cdk.Stack(app, "Canary")
    s3.Bucket(canary, "NoAccessLogs", enforce_ssl=True)
    stacks["canary"] = canary
    cdk.Aspects.of(app).add(AwsSolutionsChecks())
    assembly = app.synth()
    return {k: (s, assembly.get_stack_by_name(s.stack_name).template) for k, s in stacks.items()}


def findings(stack: Any) -> list[str]:
    from aws_cdk.assertions import Annotations, Match

    annotations = Annotations.from_stack(stack)
    found = annotations.find_error("*", Match.string_like_regexp(NAG))
    found += annotations.find_warning("*", Match.string_like_regexp(NAG))
    return [f"{m.id}: {str(m.entry.data).splitlines()[0][:200]}" for m in found]


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_no_finding_is_left_unfixed_and_unacknowledged(nagged: dict[str, Any], stage: str) -> None:
    stack, _template = nagged[stage]
    assert findings(stack) == []


@pytest.mark.slow
def test_the_check_is_live_a_bucket_without_access_logs_is_flagged(nagged: dict[str, Any]) -> None:
    canary, _template = nagged["canary"]
    assert any("AwsSolutions-S1" in f for f in findings(canary))


@pytest.mark.parametrize("stage", STAGES)
def test_every_acknowledgement_has_a_reason_and_is_one_of_the_known_rules(
    nagged: dict[str, Any], stage: str
) -> None:
    _stack, template = nagged[stage]
    acknowledged = [
        rule
        for part in [
            template.get("Metadata", {}),
            *(r.get("Metadata", {}) for r in template["Resources"].values()),
        ]
        for rule in part.get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert acknowledged
    assert all(len(rule["reason"]) >= 30 for rule in acknowledged), [
        r for r in acknowledged if len(r["reason"]) < 30
    ]
    assert {rule["id"] for rule in acknowledged} <= ACKNOWLEDGED


@pytest.mark.parametrize("stage", STAGES)
def test_what_matters_for_a_data_lake_is_fixed_not_acknowledged(nagged: dict[str, Any], stage: str) -> None:
    _stack, t = nagged[stage]
    resources = t["Resources"].values()
    buckets = {k: r for k, r in t["Resources"].items() if r["Type"] == "AWS::S3::Bucket"}
    for name in ("StorageArchive", "StorageData"):
        bucket = next(b for k, b in buckets.items() if k.startswith(name))
        assert "LoggingConfiguration" in bucket["Properties"], name  # S3 server access logs
    logs_bucket = next(k for k in buckets if k.startswith("StorageLogs"))
    (flow,) = [r for r in resources if r["Type"] == "AWS::EC2::FlowLog"]
    assert flow["Properties"]["LogDestinationType"] == "s3" and logs_bucket in json.dumps(flow["Properties"])
    rotated = {
        json.dumps(r["Properties"]["SecretId"])
        for r in resources
        if r["Type"] == "AWS::SecretsManager::RotationSchedule"
    }
    assert len(rotated) == 2  # the catalog owner and the services' user
    (cluster,) = [r for r in resources if r["Type"] == "AWS::Redshift::Cluster"]
    assert cluster["Properties"]["LoggingProperties"]["LogDestinationType"] == "cloudwatch"
    (params,) = [r for r in resources if r["Type"] == "AWS::Redshift::ClusterParameterGroup"]
    assert {"ParameterName": "require_ssl", "ParameterValue": "true"} in params["Properties"]["Parameters"]


@pytest.mark.slow
def test_cfn_lint_finds_nothing_in_either_stage(stages: dict[str, Synthesised]) -> None:
    directory = Path(stages["dev"].assembly.directory)
    templates = [str(directory / f"{stages[s].stack.stack_name}.template.json") for s in STAGES]
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("cfn-lint")),
            "--format",
            "parseable",
            "--ignore-checks",
            *IGNORED_LINT,
            "--",
            *templates,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
