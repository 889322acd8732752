"""Create the platform's resources idempotently against any endpoint: the emulator or a real account.

Each step creates what is missing and leaves what exists alone, and says which.
Issues that add stores (stats, alarm state, staging) add a step to ``STEPS``.
ARNs are always read back from the service, never built by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError

from wenu_stream.config import Config

Step = Callable[[Config, dict[str, Any]], dict[str, str]]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def ensure_stream(config: Config, opts: dict[str, Any]) -> dict[str, str]:
    """The readings stream, with ``opts['shards']`` shards when it is created."""
    kinesis = boto3.client("kinesis")
    name = config.kinesis.stream
    try:
        kinesis.create_stream(StreamName=name, ShardCount=int(opts.get("shards", 4)))
        state = "created"
    except ClientError as exc:
        if _code(exc) != "ResourceInUseException":
            raise
        state = "exists"
    _wait(lambda: kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
          == "ACTIVE", f"stream {name}")
    return {f"kinesis stream {name}": state}


def ensure_table(name: str, keys: list[tuple[str, str]], *, ttl_attribute: str | None = None) -> dict[str, str]:
    """A PAY_PER_REQUEST table with string keys ``[(hash, 'HASH'), (range, 'RANGE')]``."""
    ddb = boto3.client("dynamodb")
    try:
        ddb.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
        )
        state = "created"
    except ClientError as exc:
        if _code(exc) != "ResourceInUseException":
            raise
        state = "exists"
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    if ttl_attribute:
        current = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"].get("TimeToLiveStatus")
        if current not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True,
                                                                             "AttributeName": ttl_attribute})
    return {f"dynamodb table {name}": state}


def ensure_state_table(config: Config, opts: dict[str, Any]) -> dict[str, str]:
    """Per-shard processing state saved with every checkpoint."""
    return ensure_table(config.sinks.state_table, [("pk", "HASH"), ("pos", "RANGE")])


def ensure_bucket(config: Config, opts: dict[str, Any]) -> dict[str, str]:
    """The data bucket: dead letters, staging, quarantine."""
    s3 = boto3.client("s3")
    name = config.sinks.bucket
    try:
        s3.head_bucket(Bucket=name)
        return {f"s3 bucket {name}": "exists"}
    except ClientError as exc:
        if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    region = s3.meta.region_name
    extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=name, **extra)
    return {f"s3 bucket {name}": "created"}


def _alarm_tables(config: Config, opts: dict[str, Any]) -> dict[str, str]:
    from wenu_stream.sinks.alarm_state import ensure_alarm_tables

    return ensure_alarm_tables(config, opts)


def _alarm_topic(config: Config, opts: dict[str, Any]) -> dict[str, str]:
    from wenu_stream.sinks.notifier import ensure_alarm_topic

    return ensure_alarm_topic(config, opts)


def _stats_table(config: Config, opts: dict[str, Any]) -> dict[str, str]:
    from wenu_stream.sinks.stats import ensure_stats_table

    return ensure_stats_table(config, opts)


STEPS: list[Step] = [ensure_stream, ensure_state_table, ensure_bucket, _stats_table, _alarm_tables, _alarm_topic]


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
