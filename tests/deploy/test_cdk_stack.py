"""The synthesised CloudFormation template: resources, their settings, and who may do what."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import task_definition_json
from wenu_stream.aws import tables

pytestmark = pytest.mark.cdk


# --- helpers over the template JSON ------------------------------------------------------------


def resources(t: dict[str, Any], kind: str, **props: Any) -> dict[str, dict[str, Any]]:
    """Resources of type ``kind`` whose Properties contain ``props`` (top-level equality)."""
    return {
        k: r
        for k, r in t["Resources"].items()
        if r["Type"] == kind and all(r.get("Properties", {}).get(p) == v for p, v in props.items())
    }


def only(t: dict[str, Any], kind: str, **props: Any) -> tuple[str, dict[str, Any]]:
    found = resources(t, kind, **props)
    assert len(found) == 1, f"{kind} {props}: {sorted(found)}"
    return next(iter(found.items()))


def role_statements(t: dict[str, Any], role_name: str) -> list[dict[str, Any]]:
    """Every statement of every policy attached to the role named ``role_name``."""
    role_id, role = only(t, "AWS::IAM::Role", RoleName=role_name)
    statements = [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for policy in resources(t, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(statements: list[dict[str, Any]], action: str, resource_mentions: str) -> bool:
    """Whether an Allow statement grants ``action`` on a resource whose JSON mentions ``resource_mentions``.

    A resource of ``*`` counts as a match: it would grant the action on everything.
    """
    for s in statements:
        if s["Effect"] != "Allow" or not any(fnmatch.fnmatchcase(action, a) for a in _listed(s["Action"])):
            continue
        for resource in _listed(s["Resource"]):
            if resource == "*" or resource_mentions in json.dumps(resource):
                return True
    return False


def table_id(t: dict[str, Any], name: str) -> str:
    return only(t, "AWS::DynamoDB::GlobalTable", TableName=name)[0]


@pytest.fixture(scope="module")
def t(synth: Any) -> dict[str, Any]:
    return synth[1]  # type: ignore[no-any-return]


# --- synthesis itself ----------------------------------------------------------------------------


def test_synthesis_needs_no_lookup_and_no_environment(synth: Any) -> None:
    """The stack is environment-agnostic and synthesis asked for no context (it ran offline)."""
    import aws_cdk as cdk

    _template, _json, stack, assembly = synth
    assert cdk.Token.is_unresolved(stack.account) and cdk.Token.is_unresolved(stack.region)
    manifest = json.loads((Path(assembly.directory) / "manifest.json").read_text())
    assert "missing" not in manifest  # context a lookup would have had to fetch from an account


# --- ingest --------------------------------------------------------------------------------------


def test_iot_rule_puts_binary_envelopes_into_the_stream_keyed_by_device(t: dict[str, Any]) -> None:
    stream_id, stream = only(t, "AWS::Kinesis::Stream", Name="wenu-dev-readings")
    _id, rule = only(t, "AWS::IoT::TopicRule")
    payload = rule["Properties"]["TopicRulePayload"]
    assert payload["Sql"] == "SELECT * FROM 'wenu/dev/readings/+'"
    kinesis_action = payload["Actions"][0]["Kinesis"]
    assert kinesis_action["StreamName"] == {"Ref": stream_id}
    assert kinesis_action["PartitionKey"] == "${topic(4)}"
    assert "iot-errors/" in payload["ErrorAction"]["S3"]["Key"]
    assert stream["Properties"]["StreamEncryption"]["KeyId"] == "alias/aws/kinesis"


def test_firehose_archives_the_stream_to_s3_raw_gzip_date_partitioned_and_buffered(t: dict[str, Any]) -> None:
    stream_id, _stream = only(t, "AWS::Kinesis::Stream", Name="wenu-dev-readings")
    _id, delivery = only(t, "AWS::KinesisFirehose::DeliveryStream")
    props = delivery["Properties"]
    assert props["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert props["KinesisStreamSourceConfiguration"]["KinesisStreamARN"] == {"Fn::GetAtt": [stream_id, "Arn"]}
    s3 = props["ExtendedS3DestinationConfiguration"]
    assert s3["CompressionFormat"] == "GZIP"
    assert s3["Prefix"].startswith("raw/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/")
    assert s3["ErrorOutputPrefix"].startswith("raw-errors/!{firehose:error-output-type}/")
    assert s3["BufferingHints"] == {"IntervalInSeconds": 300, "SizeInMBs": 128}
    archive_id = json.dumps(s3["BucketARN"])
    assert "StorageArchive" in archive_id


# --- storage -------------------------------------------------------------------------------------


def test_stats_table_expires_items_by_ttl_and_sorts_windows_numerically(t: dict[str, Any]) -> None:
    _id, stats = only(t, "AWS::DynamoDB::GlobalTable", TableName="wenu-dev-stats")
    props = stats["Properties"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert {"AttributeName": "sk", "AttributeType": "N"} in props["AttributeDefinitions"]


@pytest.mark.parametrize(
    "name", ["wenu-dev-state", "wenu-dev-stats", "wenu-dev-alarm-state", "wenu-dev-alarm-transitions"]
)
def test_every_table_has_point_in_time_recovery_and_deletion_protection(t: dict[str, Any], name: str) -> None:
    _id, table = only(t, "AWS::DynamoDB::GlobalTable", TableName=name)
    replica = table["Properties"]["Replicas"][0]
    assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert replica["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def test_alarm_tables_have_the_indexes_the_application_queries(t: dict[str, Any]) -> None:
    _id, state = only(t, "AWS::DynamoDB::GlobalTable", TableName="wenu-dev-alarm-state")
    _id, transitions = only(t, "AWS::DynamoDB::GlobalTable", TableName="wenu-dev-alarm-transitions")
    assert [i["IndexName"] for i in state["Properties"]["GlobalSecondaryIndexes"]] == ["by-shard"]
    assert [i["IndexName"] for i in transitions["Properties"]["GlobalSecondaryIndexes"]] == ["pending"]


def _rules(bucket: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}


def test_buckets_have_lifecycle_rules_per_prefix_and_block_public_access(t: dict[str, Any]) -> None:
    buckets = dict(resources(t, "AWS::S3::Bucket").items())
    archive = next(b for k, b in buckets.items() if k.startswith("StorageArchive"))
    data = next(b for k, b in buckets.items() if k.startswith("StorageData"))
    raw = _rules(archive)["raw-tiering"]
    assert raw["Prefix"] == "raw/"
    assert [tr["StorageClass"] for tr in raw["Transitions"]] == ["STANDARD_IA", "GLACIER_IR", "DEEP_ARCHIVE"]
    rules = _rules(data)
    assert {rules[i]["Prefix"]: rules[i]["ExpirationInDays"] for i in rules if "Prefix" in rules[i]} == {
        "dead-letter/": 90,
        "quarantine/": 90,
        "staging/": 30,
        "manifests/": 30,
    }
    for bucket in (archive, data):
        assert _rules(bucket)["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {
            "DaysAfterInitiation": 7
        }
        assert bucket["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True


def test_key_ring_key_rotates_and_topic_is_named_for_the_app(t: dict[str, Any]) -> None:
    _id, key = only(t, "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    only(t, "AWS::SNS::Topic", TopicName="wenu-dev-alarms")


# --- services ------------------------------------------------------------------------------------


@pytest.mark.parametrize("app", ["alarms", "processing"])
def test_fargate_service_runs_the_task_definition_of_deploy_ecs(t: dict[str, Any], app: str) -> None:
    """Sizes, command, environment, health check and logs are those of deploy/ecs/task-definition-<app>.json."""
    doc = task_definition_json(app)
    spec = doc["containerDefinitions"][0]
    _id, service = only(t, "AWS::ECS::Service", ServiceName=f"wenu-dev-{app}")
    assert service["Properties"]["LaunchType"] == "FARGATE"
    assert service["Properties"]["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
        "Enable": True,
        "Rollback": True,
    }
    task_id = service["Properties"]["TaskDefinition"]["Ref"]
    task = t["Resources"][task_id]["Properties"]
    family = doc["family"].replace("${STAGE}", "dev")
    assert (task["Cpu"], task["Memory"], task["Family"]) == (doc["cpu"], doc["memory"], family)
    container = task["ContainerDefinitions"][0]
    assert container["Command"] == [app]
    assert container["User"] == "10001" and container["ReadonlyRootFilesystem"] is True
    assert container["LinuxParameters"]["InitProcessEnabled"] is True
    assert container["StopTimeout"] == spec["stopTimeout"]
    assert container["HealthCheck"]["Command"] == spec["healthCheck"]["command"]
    assert {e["Name"] for e in container["Environment"]} == {e["name"] for e in spec["environment"]}
    assert {s["Name"] for s in container["Secrets"]} == {s["name"] for s in spec["secrets"]}
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert container["LogConfiguration"]["Options"]["mode"] == "non-blocking"
    assert {"ContainerPath": "/tmp", "ReadOnly": False, "SourceVolume": "tmp"} in container["MountPoints"]


def test_services_scale_on_the_open_shard_count_published_by_a_scheduled_function(t: dict[str, Any]) -> None:
    functions = resources(t, "AWS::Lambda::Function")
    function = next(f for k, f in functions.items() if k.startswith("ShardCountFunction"))
    assert function["Properties"]["Environment"]["Variables"]["NAMESPACE"] == "Wenu"
    assert "describe_stream_summary" in function["Properties"]["Code"]["ZipFile"]
    _id, rule = only(t, "AWS::Events::Rule")
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    targets = resources(t, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert sorted(
        (x["Properties"]["MinCapacity"], x["Properties"]["MaxCapacity"]) for x in targets.values()
    ) == [(1, 16), (1, 16), (2, 6)]  # 64 shards at most, 4 per task (deploy/ecs/README.md); the API on CPU
    alarms = {k: a for k, a in resources(t, "AWS::CloudWatch::Alarm").items() if "ByOpenShards" in k}
    assert len(alarms) == 4 and all(
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"]) == ("Wenu", "OpenShardCount")
        for a in alarms.values()
    )
    policies = resources(t, "AWS::ApplicationAutoScaling::ScalingPolicy", PolicyType="StepScaling")
    assert len(policies) == 4 and {
        p["Properties"]["StepScalingPolicyConfiguration"]["AdjustmentType"] for p in policies.values()
    } == {"ExactCapacity"}


def test_processing_step_scaling_gives_one_task_per_four_shards(t: dict[str, Any]) -> None:
    """Alarm threshold + step bounds map each shard count to ceil(shards / 4) tasks."""
    target_id = next(
        k for k, x in resources(t, "AWS::ApplicationAutoScaling::ScalableTarget").items() if "Processing" in k
    )
    steps: list[tuple[float, float, int]] = []
    for policy_id, policy in resources(t, "AWS::ApplicationAutoScaling::ScalingPolicy").items():
        if policy["Properties"]["ScalingTargetId"] != {"Ref": target_id}:
            continue
        alarm = next(
            a
            for a in resources(t, "AWS::CloudWatch::Alarm").values()
            if a["Properties"]["AlarmActions"] == [{"Ref": policy_id}]
        )
        threshold = alarm["Properties"]["Threshold"]
        for s in policy["Properties"]["StepScalingPolicyConfiguration"]["StepAdjustments"]:
            lower = threshold + s.get("MetricIntervalLowerBound", float("-inf"))
            upper = threshold + s.get("MetricIntervalUpperBound", float("inf"))
            steps.append((lower, upper, s["ScalingAdjustment"]))

    def tasks(shards: int) -> int:
        return next(n for lower, upper, n in steps if lower <= shards < upper)

    assert [tasks(s) for s in (1, 4, 5, 8, 9, 33, 64, 200)] == [1, 1, 2, 2, 3, 9, 16, 16]


# --- least privilege -----------------------------------------------------------------------------

WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")


@pytest.mark.parametrize("app", ["alarms", "processing"])
def test_both_roles_read_the_stream_use_their_kcl_tables_write_state_and_their_dead_letters(
    t: dict[str, Any], app: str
) -> None:
    role = role_statements(t, f"wenu-dev-{app}-task")
    stream_id, _ = only(t, "AWS::Kinesis::Stream", Name="wenu-dev-readings")
    for action in (
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
        "kinesis:DescribeStreamSummary",
    ):
        assert allows(role, action, stream_id), action
    for table in (f"wenu-dev-{app}", f"wenu-dev-{app}-WorkerMetricStats", f"wenu-dev-{app}-CoordinatorState"):
        for action in ("dynamodb:CreateTable", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Scan"):
            assert allows(role, action, f'table/{table}"'), (action, table)
    assert allows(role, "dynamodb:PutItem", table_id(t, "wenu-dev-state"))
    assert allows(role, "s3:PutObject", f"/dead-letter/{app}/*")
    other = "processing" if app == "alarms" else "alarms"
    assert not allows(role, "dynamodb:PutItem", f'table/wenu-dev-{other}"')
    assert not allows(role, "s3:PutObject", f"/dead-letter/{other}/*")


@pytest.mark.parametrize("app", ["alarms", "processing"])
def test_roles_may_only_decrypt_with_the_key_ring_key_and_its_context(t: dict[str, Any], app: str) -> None:
    key_id, _ = only(t, "AWS::KMS::Key")
    role = role_statements(t, f"wenu-dev-{app}-task")
    kms = [s for s in role if any(str(a).startswith("kms:") for a in _listed(s["Action"]))]
    assert [s["Action"] for s in kms] == ["kms:Decrypt"]
    assert key_id in json.dumps(kms[0]["Resource"])
    assert kms[0]["Condition"] == {"StringEquals": {"kms:EncryptionContext:purpose": "wenu-keyring"}}
    assert not allows(role, "kms:Encrypt", key_id) and not allows(role, "kms:GenerateDataKey", key_id)


def test_alarms_role_cannot_write_stats_or_staging_and_publishes_alarms(t: dict[str, Any]) -> None:
    role = role_statements(t, "wenu-dev-alarms-task")
    stats = table_id(t, "wenu-dev-stats")
    assert not any(allows(role, action, stats) for action in WRITES)
    assert not allows(role, "s3:PutObject", "/staging/")
    assert not allows(role, "s3:PutObject", "/quarantine/")
    topic_id, _ = only(t, "AWS::SNS::Topic", TopicName="wenu-dev-alarms")
    assert allows(role, "sns:Publish", topic_id)
    assert allows(role, "dynamodb:UpdateItem", table_id(t, "wenu-dev-alarm-state"))
    assert allows(role, "dynamodb:Query", table_id(t, "wenu-dev-alarm-transitions"))


def test_processing_role_cannot_publish_or_touch_alarm_tables_and_writes_stats_and_staging(
    t: dict[str, Any],
) -> None:
    role = role_statements(t, "wenu-dev-processing-task")
    topic_id, _ = only(t, "AWS::SNS::Topic", TopicName="wenu-dev-alarms")
    assert not allows(role, "sns:Publish", topic_id)
    for name in ("wenu-dev-alarm-state", "wenu-dev-alarm-transitions"):
        assert not any(allows(role, action, table_id(t, name)) for action in WRITES)
    assert allows(role, "dynamodb:UpdateItem", table_id(t, "wenu-dev-stats"))
    assert allows(role, "s3:PutObject", "/staging/processing/*")
    assert allows(role, "s3:PutObject", "/quarantine/processing/*")


@pytest.mark.parametrize("app", ["alarms", "processing"])
def test_roles_have_no_wildcard_resources(t: dict[str, Any], app: str) -> None:
    """Every statement names its resources (the stream read grant included)."""
    role = role_statements(t, f"wenu-dev-{app}-task")
    assert all(r != "*" for s in role for r in _listed(s["Resource"]))


@pytest.mark.parametrize("app", ["alarms", "processing"])
@pytest.mark.parametrize(("suffix", "key"), [("CoordinatorState", "key"), ("WorkerMetricStats", "wid")])
def test_kcl3_tables_exist_with_the_daemons_key_pitr_and_deletion_protection(
    t: dict[str, Any], app: str, suffix: str, key: str
) -> None:
    """The daemon uses them as they are (it would create them without PITR: tests/e2e/test_kcl_stop.py)."""
    _id, table = only(t, "AWS::DynamoDB::GlobalTable", TableName=f"wenu-dev-{app}-{suffix}")
    assert table["Properties"]["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
    replica = table["Properties"]["Replicas"][0]
    assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert replica["DeletionProtectionEnabled"] is True and table["DeletionPolicy"] == "Retain"


def test_firehose_writes_the_archive_through_its_processor_one_json_line_per_record(
    t: dict[str, Any],
) -> None:
    _id, delivery = only(t, "AWS::KinesisFirehose::DeliveryStream")
    (processor,) = delivery["Properties"]["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"][
        "Processors"
    ]
    assert processor["Type"] == "Lambda"
    arn = next(p["ParameterValue"] for p in processor["Parameters"] if p["ParameterName"] == "LambdaArn")
    function = t["Resources"][arn["Fn::GetAtt"][0]]
    assert (
        "kinesisRecordMetadata" in function["Properties"]["Code"]["ZipFile"]
    )  # archive_processor.py, inline
    assert function["Properties"]["Runtime"] == "python3.14"


@pytest.mark.parametrize("spec", tables.TABLES, ids=lambda s: s.role)
def test_every_table_is_built_from_the_spec_the_workers_provision_from(t: dict[str, Any], spec: Any) -> None:
    """One schema for provisioning, the adapters and the stack (wenu_stream.aws.tables)."""
    _id, table = only(t, "AWS::DynamoDB::GlobalTable", TableName=f"wenu-dev-{spec.role}")
    props = table["Properties"]
    keys = [{"AttributeName": spec.hash.name, "KeyType": "HASH"}]
    if spec.range is not None:
        keys.append({"AttributeName": spec.range.name, "KeyType": "RANGE"})
    assert props["KeySchema"] == keys
    indexes = {i["IndexName"]: i["KeySchema"] for i in props.get("GlobalSecondaryIndexes", [])}
    assert indexes == {i.name: tables.key_schema(i.hash, i.range) for i in spec.indexes}
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    for key in (spec.hash, spec.range, *(k for i in spec.indexes for k in (i.hash, i.range))):
        assert key is None or types[key.name] == key.type
