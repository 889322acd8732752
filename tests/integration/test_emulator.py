"""The local stack starts on loopback only, and every service the platform uses answers."""

from __future__ import annotations

import subprocess

import boto3
import pytest

from tests.fixtures.aws import create_stream
from wenu_stream.devtools.emulator import Stack

pytestmark = pytest.mark.integration


def listening_ports(pid: int) -> list[str]:
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if f"pid={pid}," in line]


def test_every_server_listens_on_loopback_only(aws_stack: Stack) -> None:
    for name, pid in aws_stack.pids.items():
        addresses = listening_ports(pid)
        assert addresses, f"{name} listens nowhere"
        assert all(a.startswith("127.0.0.1:") for a in addresses), (name, addresses)


def test_services_answer(aws_stack: Stack, unique_name: str) -> None:
    shards = create_stream(unique_name, 2)
    assert len(shards) == 2
    boto3.client("s3").create_bucket(Bucket=unique_name)
    assert unique_name in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    topic = boto3.client("sns").create_topic(Name=unique_name)["TopicArn"]
    assert topic.endswith(unique_name)
    key = boto3.client("kms").create_key()["KeyMetadata"]["KeyId"]
    assert boto3.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Enabled"]


def test_kinesis_local_ends_a_closed_shard(use_kinesis_local: str, unique_name: str) -> None:
    kinesis = boto3.client("kinesis")
    (shard,) = create_stream(unique_name, 1, kinesis)
    kinesis.split_shard(StreamName=unique_name, ShardToSplit=shard, NewStartingHashKey=str(2**127))
    for _ in range(200):
        shards = kinesis.list_shards(StreamName=unique_name)["Shards"]
        if len(shards) == 3:
            break
    children = [s for s in shards if s.get("ParentShardId") == shard]
    assert len(children) == 2
    it = kinesis.get_shard_iterator(StreamName=unique_name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    out = kinesis.get_records(ShardIterator=it["ShardIterator"])
    assert out.get("NextShardIterator") is None
    assert {c["ShardId"] for c in out["ChildShards"]} == {c["ShardId"] for c in children}


def test_dynamodb_is_dynalite_and_provisioning_copes_with_what_it_lacks(
    aws_stack: Stack, unique_name: str
) -> None:
    """Indexes come with CreateTable (dynalite cannot add one to an on-demand table); TTL is reported missing."""
    from wenu_stream.aws.provision import ensure_alarm_tables, ensure_stats_table
    from wenu_stream.config import load_config

    assert (
        aws_stack.dynamodb == "dynalite"
        and aws_stack.env()["AWS_ENDPOINT_URL_DYNAMODB"] != aws_stack.moto_url
    )
    config = load_config({}, {"stats.table": unique_name, "alarms.state_table": f"{unique_name}-a",
                              "alarms.transitions_table": f"{unique_name}-t"})  # fmt: skip
    done = ensure_stats_table(config, {})
    assert done[f"dynamodb ttl {unique_name}.expires_at"].startswith("not supported by this endpoint")
    assert ensure_alarm_tables(config, {})[f"dynamodb index {unique_name}-a/by-shard"] == "exists"
    again = ensure_stats_table(config, {})  # idempotent
    assert again[f"dynamodb table {unique_name}"] == "exists"


@pytest.mark.parametrize("server", ["dynalite", "moto"])
def test_a_failed_condition_returns_the_item_it_saw_as_dynamodb_does(
    aws_stack: Stack, unique_name: str, server: str
) -> None:
    """ReturnValuesOnConditionCheckFailure=ALL_OLD: the adapters rely on it (devtools/emulator/dynalite_fidelity.js)."""
    url = aws_stack.dynamodb_url if server == "dynalite" else aws_stack.moto_url
    ddb = boto3.client("dynamodb", endpoint_url=url)
    ddb.create_table(
        TableName=unique_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    ddb.get_waiter("table_exists").wait(TableName=unique_name, WaiterConfig={"Delay": 1})
    ddb.put_item(TableName=unique_name, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    for write in (
        lambda **kw: ddb.put_item(Item={"pk": {"S": "a"}, "v": {"N": "2"}}, **kw),
        lambda **kw: ddb.update_item(
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"N": "2"}},
            **kw,
        ),
        lambda **kw: ddb.delete_item(Key={"pk": {"S": "a"}}, **kw),
    ):
        with pytest.raises(ddb.exceptions.ConditionalCheckFailedException) as failed:
            write(
                TableName=unique_name,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        assert failed.value.response["Item"] == {"pk": {"S": "a"}, "v": {"N": "1"}}
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException) as plain:
        ddb.put_item(
            TableName=unique_name, Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)"
        )
    assert "Item" not in plain.value.response  # only when asked
