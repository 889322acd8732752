"""The Redshift loader: Data API calls against moto (which records statements but never runs them), the load
transaction's calls through a recording fake, and the merge SQL's dedup logic on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import boto3
import psycopg
import pytest
import structlog
from aiobotocore.session import get_session

from tests.integration.test_warehouse_postgres import keys, readings, stage
from wenu_stream.cli.main import main
from wenu_stream.config import WarehouseConfig
from wenu_stream.warehouse import sql
from wenu_stream.warehouse.loader import RedshiftTarget, WarehouseError, load_pending
from wenu_stream.warehouse.manifests import StagedFile, make_manifest

pytestmark = pytest.mark.integration
ROLE = "arn:aws:iam::123456789012:role/wenu-copy"
REDSHIFT = WarehouseConfig(
    target="redshift",
    redshift_cluster="wenu",
    redshift_db_user="loader",
    redshift_iam_role=ROLE,
    redshift_timeout_s=5,
    redshift_poll_s=0.01,
)


@pytest.fixture(autouse=True)
def fresh_logging() -> Any:
    """The CLI binds logs to the stderr of its test (captured, then closed): let each test start afresh."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def bucket(aws_stack: object, unique_name: str) -> str:
    boto3.client("s3").create_bucket(Bucket=unique_name)
    return unique_name


def test_statements_reach_the_data_api_and_the_poll_gives_up(
    bucket: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {
        "TARGET": "redshift",
        "REDSHIFT_CLUSTER": "wenu",
        "REDSHIFT_DB_USER": "loader",
        "REDSHIFT_IAM_ROLE": ROLE,
        "REDSHIFT_TIMEOUT_S": "0.3",
        "REDSHIFT_POLL_S": "0.05",
    }.items():
        monkeypatch.setenv(f"WENU_WAREHOUSE_{key}", value)
    assert main(["warehouse", "load", "--bucket", bucket]) == 1
    err = capsys.readouterr().err
    match = re.search(r"Redshift statement ([0-9a-f-]{36}) still STARTED after 0.3 s", err)
    assert match, err
    seen = boto3.client("redshift-data").describe_statement(Id=match.group(1))
    assert seen["QueryString"] == sql.redshift_schema("wenu")[0]
    assert (seen["ClusterIdentifier"], seen["Database"], seen["DbUser"]) == ("wenu", "dev", "loader")


def test_missing_redshift_settings_exit_2_before_any_call(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["warehouse", "load", "--target", "redshift"]) == 2
    assert "WENU_WAREHOUSE_REDSHIFT_CLUSTER" in capsys.readouterr().err


class FakeDataApi:
    """Records Data API calls; every statement finishes at once; queries return ``loaded`` as one column."""

    def __init__(self, loaded: list[str], status: str = "FINISHED") -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._loaded, self._status = loaded, status

    async def execute_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("execute_statement", kwargs))
        return {"Id": f"s{len(self.calls)}"}

    async def batch_execute_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("batch_execute_statement", kwargs))
        return {"Id": f"s{len(self.calls)}"}

    async def describe_statement(self, Id: str) -> dict[str, Any]:
        return {"Id": Id, "Status": self._status, "Error": "ERROR: permission denied"}

    async def get_statement_result(self, Id: str, NextToken: str = "") -> dict[str, Any]:
        page = self._loaded[:2] if not NextToken else self._loaded[2:]
        more = {"NextToken": "p2"} if not NextToken and len(self._loaded) > 2 else {}
        return {"Records": [[{"stringValue": key}] for key in page], **more}


async def redshift_load(bucket: str, api: FakeDataApi) -> Any:
    async with get_session().create_client("s3") as s3:
        return await load_pending(
            s3, RedshiftTarget(api, bucket=bucket, config=REDSHIFT), bucket=bucket, config=REDSHIFT
        )


@pytest.mark.slow
def test_each_manifest_is_one_batch_transaction(bucket: str) -> None:
    asyncio.run(stage(bucket, [[(0, readings(0, 1, 5)), (1, readings(1, 1, 5))], [(0, readings(0, 6, 9))]]))
    api = FakeDataApi(loaded=[])
    summary = asyncio.run(redshift_load(bucket, api))

    (result,) = summary.manifests
    manifest = make_manifest("manifests/", [StagedFile(k, 0) for k in keys(bucket, "staging/")])
    assert result.manifest == manifest.name and result.files == 3
    target = {"ClusterIdentifier": "wenu", "Database": "dev", "DbUser": "loader"}
    assert [c[1].get("Sql") for c in api.calls[:-1]] == [
        *sql.redshift_schema("wenu"),
        sql.loaded_files("wenu"),
    ]
    name, batch = api.calls[-1]
    assert name == "batch_execute_statement" and {k: batch[k] for k in target} == target
    assert batch["Sqls"][1].startswith(
        f"COPY wenu_stage (device, seq, ch, idx, series, company, site, timezone, "
        f"kind, unit, t_ms, value, raw_value, shard_id, sequence_number, sub_sequence, sent_at) "
        f"FROM 's3://{bucket}/manifests/{manifest.name}.manifest.json' "
        f"IAM_ROLE '{ROLE}' MANIFEST GZIP CSV"
    )

    s3 = boto3.client("s3")
    doc = json.loads(s3.get_object(Bucket=bucket, Key=manifest.key)["Body"].read())
    assert doc["entries"] == [
        {"url": f"s3://{bucket}/{k}", "mandatory": True} for k in keys(bucket, "staging/")
    ]
    listed = s3.get_object(Bucket=bucket, Key=manifest.files_key)["Body"].read().decode().splitlines()
    assert listed == [f'"{k}","{manifest.name}"' for k in keys(bucket, "staging/")]


@pytest.mark.slow
def test_loaded_files_are_not_loaded_again(bucket: str) -> None:
    asyncio.run(stage(bucket, [[(0, readings(0, 1, 3)), (1, readings(1, 1, 3))], [(0, readings(0, 4, 6))]]))
    api = FakeDataApi(loaded=keys(bucket, "staging/"))  # three keys: two result pages
    summary = asyncio.run(redshift_load(bucket, api))
    assert (summary.pending_files, summary.manifests) == (0, [])
    assert "batch_execute_statement" not in [c[0] for c in api.calls]


def test_a_failed_statement_stops_the_load(bucket: str) -> None:
    asyncio.run(stage(bucket, [[(0, readings(0, 1, 3))]]))
    with pytest.raises(WarehouseError, match="FAILED: ERROR: permission denied"):
        asyncio.run(redshift_load(bucket, FakeDataApi(loaded=[], status="FAILED")))


def test_the_redshift_merge_keeps_one_row_per_key_on_a_real_database(postgres_database: str) -> None:
    """Redshift enforces no keys, so its merge must dedup itself: checked here on PostgreSQL without the key."""
    from tests.support.warehouse import reading
    from wenu_stream.warehouse.rows import encode_csv, to_row

    manifest = make_manifest("manifests/", [StagedFile("staging/a.csv.gz", 1)])
    statements = sql.redshift_load("wenu", manifest, bucket="b", iam_role=ROLE)
    batch = [to_row("s", reading(device="D", seq=n % 5, index=0)) for n in range(12)]  # 5 keys, repeated
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        for statement in sql.pg_schema("wenu"):
            conn.execute(statement)
        conn.execute(
            "ALTER TABLE wenu.readings DROP CONSTRAINT readings_pkey"
        )  # as unenforced as on Redshift
        for _ in range(2):  # the same manifest twice
            with conn.transaction():
                conn.execute(statements[0])
                with conn.cursor().copy(sql.pg_copy()) as copy:  # stands in for Redshift's COPY ... MANIFEST
                    copy.write(encode_csv(batch))
                conn.execute(statements[2])
                conn.execute(f"INSERT INTO wenu_stage_files VALUES ('staging/a.csv.gz', '{manifest.name}')")
                for statement in statements[4:]:
                    conn.execute(statement)
        counts = conn.execute(sql.counts("wenu")).fetchone()
    assert counts == (1, 1, 5)
