"""Create the platform's resources idempotently against any endpoint: the emulator or a real account.

Each step creates what is missing and leaves what exists alone, and says which.
Tables come from their specs (``aws.tables``); a new store adds a spec there.
ARNs are always read back from the service, never built by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from wenu_stream.aws.common import error_code
from wenu_stream.aws.tables import (
    ALARM_STATE,
    STATE,
    STATS,
    TABLES,
    TRANSITIONS,
    Index,
    TableSpec,
    attribute_definitions,
    key_schema,
)
from wenu_stream.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import CreateTableInputTypeDef, GlobalSecondaryIndexTypeDef

Step = Callable[[Config, dict[str, Any]], dict[str, str]]


def ensure_stream(config: Config, opts: dict[str, Any]) -> dict[str, str]:
    """The readings stream, with ``opts['shards']`` shards when it is created."""
    kinesis = boto3.client("kinesis")
    name = config.kinesis.stream
    try:
        kinesis.create_stream(StreamName=name, ShardCount=int(opts.get("shards", 4)))
        state = "created"
    except ClientError as exc:
        if error_code(exc) != "ResourceInUseException":
            raise
        state = "exists"
    _wait(
        lambda: (
            kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
            == "ACTIVE"
        ),
        f"stream {name}",
    )
    return {f"kinesis stream {name}": state}


def ensure_table(spec: TableSpec, name: str) -> dict[str, str]:
    """A PAY_PER_REQUEST table as ``spec`` says (keys, indexes, TTL) under ``name``; indexes added when missing.

    A new table gets its indexes in the CreateTable call (one step on AWS; dynalite
    cannot add an index to an on-demand table later). An endpoint without
    UpdateTimeToLive (dynalite) is reported as such, not an error: its items never
    expire, and every reader filters on ``expires_at`` anyway.
    """
    ddb = boto3.client("dynamodb")
    try:
        request: CreateTableInputTypeDef = {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": attribute_definitions(
                spec.hash, spec.range, *(k for i in spec.indexes for k in (i.hash, i.range))
            ),
            "KeySchema": key_schema(spec.hash, spec.range),
        }
        if spec.indexes:
            request["GlobalSecondaryIndexes"] = [_index(i) for i in spec.indexes]
        ddb.create_table(**request)
        state = "created"
    except ClientError as exc:
        if error_code(exc) != "ResourceInUseException":
            raise
        state = "exists"
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    done = {f"dynamodb table {name}": state}
    for index in spec.indexes:
        done.update(_ensure_index(ddb, spec, name, index))
    if spec.ttl_attribute:
        done.update(_ensure_ttl(ddb, name, spec.ttl_attribute))
    return done


def _ensure_ttl(ddb: DynamoDBClient, table: str, attribute: str) -> dict[str, str]:
    """Turn TTL on, unless it is; an endpoint without the TTL API says so in the result."""
    what = f"dynamodb ttl {table}.{attribute}"
    try:
        current = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"].get("TimeToLiveStatus")
        if current in ("ENABLED", "ENABLING"):
            return {what: "exists"}
        ddb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
        )
    except ClientError as exc:
        if error_code(exc) != "UnknownOperationException":  # AWS has the operation: never this code there
            raise
        return {what: "not supported by this endpoint (emulator): items never expire, reads filter them"}
    return {what: "created"}


def _index(index: Index) -> GlobalSecondaryIndexTypeDef:
    return {
        "IndexName": index.name,
        "KeySchema": key_schema(index.hash, index.range),
        "Projection": {"ProjectionType": index.projection},
    }


def _ensure_index(
    ddb: DynamoDBClient, spec: TableSpec, table: str, index: Index, timeout_s: float = 900.0
) -> dict[str, str]:
    """Add a GSI unless the table has it; wait until it is ACTIVE."""

    def status() -> str | None:
        indexes = ddb.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])
        return next(
            (str(i.get("IndexStatus", "ACTIVE")) for i in indexes if i["IndexName"] == index.name), None
        )

    state = "exists"
    if status() is None:
        ddb.update_table(
            TableName=table,
            AttributeDefinitions=attribute_definitions(index.hash, index.range),
            GlobalSecondaryIndexUpdates=[{"Create": _index(index)}],
        )
        state = "created"
    deadline = time.monotonic() + timeout_s
    while status() != "ACTIVE":  # AWS backfills a new index for a while; the emulator is ACTIVE at once
        if time.monotonic() > deadline:
            raise TimeoutError(f"index {index.name} of {table} not ACTIVE after {timeout_s:.0f} s")
        time.sleep(2)
    return {f"dynamodb index {table}/{index.name}": state}


def _tables(*specs: TableSpec) -> Step:
    def step(config: Config, opts: dict[str, Any]) -> dict[str, str]:
        done: dict[str, str] = {}
        for spec in specs:
            done.update(ensure_table(spec, spec.name_of(config)))
        return done

    step.__doc__ = "The tables " + ", ".join(s.role for s in specs) + " (specs in ``aws.tables``)."
    return step


ensure_state_table = _tables(STATE)
ensure_stats_table = _tables(STATS)
ensure_alarm_tables = _tables(ALARM_STATE, TRANSITIONS)
ensure_tables = _tables(*TABLES)


def ensure_bucket(config: Config, opts: dict[str, Any]) -> dict[str, str]:
    """The data bucket: dead letters, staging, quarantine."""
    s3 = boto3.client("s3")
    name = config.sinks.bucket
    try:
        s3.head_bucket(Bucket=name)
        return {f"s3 bucket {name}": "exists"}
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    region = s3.meta.region_name
    extra: dict[str, Any] = (
        {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    s3.create_bucket(Bucket=name, **extra)
    return {f"s3 bucket {name}": "created"}


def ensure_alarm_topic(config: Config, opts: dict[str, Any]) -> dict[str, str]:
    """The alarms topic (CreateTopic is idempotent; its ARN is read back, never built)."""
    sns = boto3.client("sns")
    if config.alarms.topic_arn:
        sns.get_topic_attributes(TopicArn=config.alarms.topic_arn)  # fails if it does not exist
        return {f"sns topic {config.alarms.topic_arn}": "exists"}
    name = config.alarms.topic_name
    known = {t["TopicArn"] for page in sns.get_paginator("list_topics").paginate() for t in page["Topics"]}
    fifo: dict[str, Any] = {"Attributes": {"FifoTopic": "true"}} if name.endswith(".fifo") else {}
    arn = sns.create_topic(Name=name, **fifo)
    return {f"sns topic {arn['TopicArn']}": "exists" if arn["TopicArn"] in known else "created"}


STEPS: list[Step] = [ensure_stream, ensure_tables, ensure_bucket, ensure_alarm_topic]


def provision(config: Config, **opts: Any) -> dict[str, str]:
    """Run every step; return what each resource is now (created or exists)."""
    done: dict[str, str] = {}
    for step in STEPS:
        done.update(step(config, opts))
    return done


def _wait(ready: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(0.1)
