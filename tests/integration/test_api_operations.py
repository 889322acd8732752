"""Operations reads over HTTP on the local stack: dead letters by reason and arrival time (paged), quarantine
counts, and checkpoints with lag per application, as the workers' stores hold them."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fixtures.aws import create_stream
from tests.integration.api_support import Api, api_config, running_api, seed
from wenu_stream.aws.dead_letters import DeadLetterDocument, encode_lines, object_key
from wenu_stream.drivers.native.leases import Lease, to_item
from wenu_stream.stats.items import window_pk

pytestmark = pytest.mark.integration


@pytest.fixture
def api(aws_stack: object, postgres_database: str, unique_name: str, tmp_path: Path) -> Iterator[Api]:
    config = api_config(unique_name, postgres_database, tmp_path, **{"lease.table": f"{unique_name}-leases"})
    with running_api(config) as running:
        yield running


def letter(api: Api, reason: str, shard: str, seq: int, arrival: str) -> None:
    cfg = api.config
    doc = DeadLetterDocument(
        app="processing", stream=cfg.kinesis.stream, shard_id=shard, sequence_number=str(seq),
        sub_sequence_number=0, partition_key="EM-1", reason=reason, detail="d", arrival_time=arrival,
        data_b64="AAAA",
    )  # fmt: skip
    key = object_key(cfg.sinks.dead_letter_prefix, "processing", cfg.kinesis.stream, reason, shard, doc)
    boto3.client("s3").put_object(Bucket=cfg.sinks.bucket, Key=key, Body=encode_lines([doc]))


@pytest.mark.slow
def test_dead_letters_by_reason_and_time_in_pages(api: Api) -> None:
    letter(api, "auth_failed", "shardId-0", 1, "2026-11-20T10:00:00.000+00:00")
    letter(api, "auth_failed", "shardId-0", 2, "2026-11-20T11:00:00.000+00:00")
    letter(api, "auth_failed", "shardId-0", 3, "2026-11-20T12:00:00.000+00:00")
    letter(api, "truncated", "shardId-0", 4, "2026-11-20T12:30:00.000+00:00")
    staff = api.client("viewer")
    first = staff.get("/api/v1/dead-letters", params={"reason": "auth_failed", "limit": 2}).json()
    assert [d["sequence_number"] for d in first["items"]] == ["1", "2"] and "data_b64" not in first["items"][
        0
    ]
    rest = staff.get(
        "/api/v1/dead-letters", params={"reason": "auth_failed", "limit": 2, "cursor": first["next"]}
    )
    assert [d["sequence_number"] for d in rest.json()["items"]] == ["3"] and rest.json()["next"] is None
    window = staff.get(
        "/api/v1/dead-letters",
        params={"from": "2026-11-20T12:00:00+01:00", "to": "2026-11-20T13:00:00+01:00"},
    ).json()
    assert [d["sequence_number"] for d in window["items"]] == ["2"]  # 11:00Z is 12:00+01:00
    assert staff.get("/api/v1/dead-letters", params={"reason": "nonsense"}).status_code == 400
    assert staff.get("/api/v1/dead-letters", params={"cursor": "not-ours"}).status_code == 400
    # One convention with the CLI: a time without offset is UTC (11:00 is the letter at 11:00Z).
    utc = staff.get(
        "/api/v1/dead-letters", params={"from": "2026-11-20T11:00:00", "to": "2026-11-20T12:00:00"}
    )
    assert [d["sequence_number"] for d in utc.json()["items"]] == ["2"]
    assert staff.get("/api/v1/dead-letters", params={"from": "noonish"}).status_code == 400


def test_quarantine_counts_by_device_channel_and_reason(api: Api) -> None:
    cfg = api.config
    doc = {
        "app": "processing",
        "stream": cfg.kinesis.stream,
        "shard_id": "shardId-0",
        "sequence_number": "7",
        "sub_sequence_number": 0,
        "readings": [
            {"device": "EM-9", "ch": "v", "t": 1, "v": 1.0, "seq": 1, "index": 0, "reason": "unknown_device"},
            {"device": "EM-9", "ch": "v", "t": 2, "v": 1.0, "seq": 2, "index": 0, "reason": "unknown_device"},
        ],
    }
    boto3.client("s3").put_object(
        Bucket=cfg.sinks.bucket,
        Key=f"quarantine/processing/{cfg.kinesis.stream}/x/7.json",
        Body=json.dumps(doc).encode(),
    )
    got = api.client("viewer").get("/api/v1/quarantine").json()["items"]
    assert got == [{"device": "EM-9", "ch": "v", "reason": "unknown_device", "readings": 2}]


def test_checkpoints_and_lag_per_application(api: Api) -> None:
    cfg = api.config
    (shard,) = create_stream(cfg.kinesis.stream)
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=cfg.lease.table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
    )
    ddb.put_item(
        TableName=cfg.lease.table,
        Item=to_item(Lease(lease_key=shard, lease_owner="worker-1", lease_counter=3)),
    )
    boto3.client("kinesis").put_record(StreamName=cfg.kinesis.stream, Data=b"x", PartitionKey="p")
    time.sleep(0.05)
    rows = api.client("viewer").get("/api/v1/apps/processing/checkpoints").json()["items"]
    assert [(r["shard_id"], r["lease_owner"], r["checkpoint"]) for r in rows] == [
        (shard, "worker-1", "TRIM_HORIZON")
    ]
    assert rows[0]["lag"]["next_record_age_ms"] is not None  # one record waits behind the checkpoint
    assert api.client("viewer").get("/api/v1/apps/alarms/checkpoints").status_code == 404  # no table yet
    assert api.client("viewer").get("/api/v1/apps/nope/checkpoints").status_code == 404


OTHER = "acme-hq.main.power"


@pytest.mark.parametrize(
    ("path", "params", "other_series"),
    [
        ("stats", {"window": "15m"}, {"pk": {"S": window_pk(OTHER, "15m")}, "sk": {"N": "0"}}),
        ("transitions", {}, {"series": {"S": OTHER}, "sk": {"S": "0"}}),
    ],
)
def test_a_cursor_of_another_list_is_the_callers_mistake(
    api: Api, path: str, params: dict[str, str], other_series: dict[str, Any]
) -> None:
    """A stats or transitions cursor is the key the DynamoDB Query resumes after; one naming other attributes,
    or another series' key, is a 400 naming the cursor (before: a 503 as if AWS were down, or the first page)."""
    seed(api)
    viewer = api.client("viewer")
    url = f"/api/v1/series/bravo-plant.power/{path}"
    assert viewer.get(url, params=params).status_code == 200
    for key in ({}, {"x": {"S": "1"}}, other_series):
        cursor = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
        answer = viewer.get(url, params=params | {"cursor": cursor})
        assert answer.status_code == 400 and "cursor" in answer.text, (key, answer.text)
