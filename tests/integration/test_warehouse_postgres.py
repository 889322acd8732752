"""Staging to S3 (moto) and loading into a real PostgreSQL: every reading exactly once, whatever replays or fails."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

import boto3
import psycopg
import pytest
import structlog
from aiobotocore.session import get_session
from prometheus_client.parser import text_string_to_metric_families

from tests.support.warehouse import reading
from wenu_stream.cli.main import main
from wenu_stream.config import WarehouseConfig
from wenu_stream.model import Position, SeriesReading
from wenu_stream.warehouse import sql
from wenu_stream.warehouse.loader import PostgresTarget, load_pending
from wenu_stream.warehouse.rows import COLUMNS
from wenu_stream.warehouse.staging import S3StagingSink

pytestmark = pytest.mark.integration
SHARDS = ("shardId-000000000000", "shardId-000000000001")


def readings(shard: int, first: int, last: int) -> list[SeriesReading]:
    """Two readings per message ``seq`` of device EM-<shard>, at position seq (sub 0)."""
    return [
        reading(device=f"EM-{shard}", seq=n, index=i, ch=f"ch{i}", value=n + i / 3, position=Position(n, 0))
        for n in range(first, last + 1)
        for i in range(2)
    ]


async def stage(bucket: str, flushes: Sequence[Sequence[tuple[int, list[SeriesReading]]]]) -> None:
    """Each flush: the listed (shard, readings) written, then one flush (one file per shard)."""
    async with get_session().create_client("s3") as s3:
        sink = S3StagingSink(s3, bucket=bucket, prefix="staging/", app="processing", stream="readings")
        for flush in flushes:
            for shard, batch in flush:
                await sink.write_readings(SHARDS[shard], batch)
            await sink.flush()


def keys(bucket: str, prefix: str) -> list[str]:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def scalar(dsn: str, query: str) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        return row[0]


def load(bucket: str, dsn: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["warehouse", "load", "--bucket", bucket, "--dsn", dsn]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


@pytest.fixture(autouse=True)
def fresh_logging() -> Any:
    """The CLI binds logs to the stderr of its test (captured, then closed): let each test start afresh."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def bucket(aws_stack: object, unique_name: str) -> str:
    boto3.client("s3").create_bucket(Bucket=unique_name)
    return unique_name


@pytest.mark.slow
def test_staged_readings_load_once(
    bucket: str, postgres_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(
        stage(bucket, [[(0, readings(0, 1, 50)), (1, readings(1, 1, 30))], [(0, readings(0, 51, 60))]])
    )
    assert len(keys(bucket, "staging/")) == 3

    first = load(bucket, postgres_database, capsys)
    assert (first["staged_files"], first["pending_files"]) == (3, 3)
    assert [(m["files"], m["rows_staged"], m["rows_inserted"]) for m in first["manifests"]] == [(3, 180, 180)]
    manifest = first["manifests"][0]["manifest"]
    assert f"manifests/{manifest}.manifest.json" in keys(bucket, "manifests/")
    assert scalar(postgres_database, "SELECT COUNT(*) FROM wenu.readings") == 180

    again = load(bucket, postgres_database, capsys)
    assert (again["pending_files"], again["manifests"]) == (0, [])
    assert scalar(postgres_database, "SELECT COUNT(*) FROM wenu.readings") == 180
    assert scalar(postgres_database, "SELECT COUNT(*) FROM wenu.loaded_manifests") == 1

    assert main(["warehouse", "status", "--bucket", bucket, "--dsn", postgres_database]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "staged_files": 3,
        "pending_files": 0,
        "pending_bytes": 0,
        "loaded_manifests": 1,
        "loaded_files": 3,
        "readings": 180,
    }


def test_rows_hold_the_exact_values(
    bucket: str, postgres_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tricky = reading(
        device="EM-9",
        site='Zürich, "Bahnhof"\nNord',
        unit="",
        value=0.1 + 0.2,
        t=1764300000123,
        position=Position(49650000000000000000000000000000000000000000000000000001, 4),
    )
    asyncio.run(stage(bucket, [[(0, [tricky])]]))
    load(bucket, postgres_database, capsys)
    with psycopg.connect(postgres_database) as conn:
        row = conn.execute(
            "SELECT site, unit, value, t_ms, sequence_number, sub_sequence, "
            "extract(epoch FROM measured_at) * 1000 FROM wenu.readings"
        ).fetchone()
    assert row is not None
    assert row[:6] == (
        'Zürich, "Bahnhof"\nNord',
        "",
        0.30000000000000004,
        1764300000123,
        "49650000000000000000000000000000000000000000000000000001",
        4,
    )
    assert int(row[6]) == 1764300000123


@pytest.mark.slow
def test_a_replay_with_other_boundaries_adds_no_duplicates(
    bucket: str, postgres_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(stage(bucket, [[(0, readings(0, 1, 40))], [(0, readings(0, 41, 100))]]))
    assert load(bucket, postgres_database, capsys)["manifests"][0]["rows_inserted"] == 200

    # A crash re-delivers 30..100 in other batches, then new records 101..120 arrive; some overlap within a file too.
    asyncio.run(
        stage(bucket, [[(0, readings(0, 30, 70))], [(0, readings(0, 71, 100) + readings(0, 95, 120))]])
    )
    (manifest,) = load(bucket, postgres_database, capsys)["manifests"]
    assert (manifest["files"], manifest["rows_staged"], manifest["rows_inserted"]) == (2, 194, 40)
    assert scalar(postgres_database, "SELECT COUNT(*) FROM wenu.readings") == 240
    assert (
        scalar(postgres_database, "SELECT COUNT(DISTINCT (device, seq, ch, idx)) FROM wenu.readings") == 240
    )


@pytest.mark.slow
def test_many_files_are_grouped_into_manifests_by_size(
    bucket: str, postgres_database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(
        stage(bucket, [[(0, readings(0, n, n + 9)), (1, readings(1, n, n + 9))] for n in range(1, 60, 10)])
    )
    monkeypatch.setenv("WENU_WAREHOUSE_MAX_MANIFEST_FILES", "5")
    out = load(bucket, postgres_database, capsys)
    assert [m["files"] for m in out["manifests"]] == [5, 5, 2]
    assert scalar(postgres_database, "SELECT COUNT(*) FROM wenu.readings") == 240
    assert scalar(postgres_database, "SELECT COUNT(*) FROM wenu.loaded_files") == 12


class FaultyS3:
    """The real (moto) S3 client; ``before_get(key)`` runs before the n-th get_object, to cause a real fault."""

    def __init__(self, s3: Any, nth: int, before_get: Any) -> None:
        self._s3, self._nth, self._before = s3, nth, before_get
        self.gets = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    async def get_object(self, **kwargs: Any) -> Any:
        self.gets += 1
        if self.gets == self._nth:
            await self._before(kwargs["Key"])
        return await self._s3.get_object(**kwargs)


async def load_with_fault(bucket: str, dsn: str, before_get: Any) -> FaultyS3:
    """Load with a fault just before the second file is read; the load must fail."""
    async with get_session().create_client("s3") as s3:
        faulty = FaultyS3(s3, 2, before_get)
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        try:
            target = PostgresTarget(conn, faulty, bucket=bucket, schema="wenu")
            with pytest.raises((psycopg.OperationalError, s3.exceptions.NoSuchKey)):
                await load_pending(faulty, target, bucket=bucket, config=WarehouseConfig())
        finally:
            await conn.close()
    return faulty


def ledger(dsn: str) -> tuple[int, int, int]:
    return (
        scalar(dsn, "SELECT COUNT(*) FROM wenu.loaded_manifests"),
        scalar(dsn, "SELECT COUNT(*) FROM wenu.loaded_files"),
        scalar(dsn, "SELECT COUNT(*) FROM wenu.readings"),
    )


def test_connection_lost_mid_load_leaves_the_ledger_unchanged(
    bucket: str, postgres_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(stage(bucket, [[(0, readings(0, 1, 20)), (1, readings(1, 1, 20))]]))

    async def kill_loader_session(_key: str) -> None:  # the server ends the loader's backend mid-COPY
        async with await psycopg.AsyncConnection.connect(postgres_database, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    faulty = asyncio.run(load_with_fault(bucket, postgres_database, kill_loader_session))
    assert faulty.gets == 2
    assert ledger(postgres_database) == (0, 0, 0)

    out = load(bucket, postgres_database, capsys)
    assert [(m["files"], m["rows_inserted"]) for m in out["manifests"]] == [(2, 80)]
    assert ledger(postgres_database) == (1, 2, 80)


@pytest.mark.slow
def test_staged_file_unreadable_mid_load_leaves_the_ledger_unchanged(
    bucket: str, postgres_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(stage(bucket, [[(0, readings(0, 1, 20)), (1, readings(1, 1, 20))]]))
    removed: list[str] = []

    async def lose_the_file(key: str) -> None:  # S3 answers NoSuchKey for a file listed a moment ago
        removed.append(key)
        boto3.client("s3").delete_object(Bucket=bucket, Key=key)

    asyncio.run(load_with_fault(bucket, postgres_database, lose_the_file))
    assert ledger(postgres_database) == (0, 0, 0)

    # The replay that re-stages it (same records, same key) lets the next load complete.
    asyncio.run(stage(bucket, [[(1, readings(1, 1, 20))]]))
    assert removed[0] in keys(bucket, "staging/")
    out = load(bucket, postgres_database, capsys)
    assert [(m["files"], m["rows_inserted"]) for m in out["manifests"]] == [(2, 80)]
    assert ledger(postgres_database) == (1, 2, 80)


@pytest.mark.slow
def test_cli_outage_is_exit_1_with_a_hint(bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(stage(bucket, [[(0, readings(0, 1, 2))]]))
    assert (
        main(["warehouse", "load", "--bucket", bucket, "--dsn", "postgresql://nobody@127.0.0.1:1/none"]) == 1
    )
    assert "run `wenu-stream warehouse load` again" in capsys.readouterr().err


def pushed(gateway: str) -> dict[str, float]:
    """The samples a Pushgateway holds for the load job, by metric name and outcome (its own metrics left out)."""
    text = urllib.request.urlopen(gateway + "/metrics", timeout=10).read().decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("job") == "wenu-warehouse-load":
                assert sample.labels["target"] == "postgres"
                found[
                    sample.name + (f":{sample.labels['outcome']}" if "outcome" in sample.labels else "")
                ] = sample.value
    return found


@pytest.mark.slow
def test_each_load_run_pushes_its_outcome_and_a_failed_run_keeps_the_last_success(
    bucket: str, postgres_database: str, pushgateway: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(stage(bucket, [[(0, readings(0, 1, 40))], [(1, readings(1, 1, 40))]]))
    before = time.time()
    assert (
        main(
            [
                "warehouse",
                "load",
                "--bucket",
                bucket,
                "--dsn",
                postgres_database,
                "--pushgateway",
                pushgateway,
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    first = pushed(pushgateway)
    assert first["wenu_warehouse_last_run_ok"] == 1 and first["wenu_warehouse_pending_files"] == 2
    assert first["wenu_warehouse_manifests:loaded"] == 1 and first["wenu_warehouse_manifests:skipped"] == 0
    assert first["wenu_warehouse_rows_inserted"] == summary["manifests"][0]["rows_inserted"]
    assert (
        first["wenu_warehouse_rows_inserted"]
        == scalar(postgres_database, "SELECT COUNT(*) FROM wenu.readings")
        > 0
    )
    assert before <= first["wenu_warehouse_last_success_timestamp_seconds"] <= time.time()

    assert (
        main(
            [
                "warehouse",
                "load",
                "--bucket",
                bucket,
                "--dsn",
                "postgresql://nobody@127.0.0.1:1/none",
                "--pushgateway",
                pushgateway,
            ]
        )
        == 1
    )
    failed = pushed(pushgateway)
    assert failed["wenu_warehouse_last_run_ok"] == 0
    assert (
        failed["wenu_warehouse_last_run_timestamp_seconds"]
        >= first["wenu_warehouse_last_run_timestamp_seconds"]
    )
    assert (
        failed["wenu_warehouse_last_success_timestamp_seconds"]
        == first["wenu_warehouse_last_success_timestamp_seconds"]
    )

    assert (
        main(
            [
                "warehouse",
                "load",
                "--bucket",
                bucket,
                "--dsn",
                postgres_database,
                "--pushgateway",
                "http://127.0.0.1:1",
            ]
        )
        == 0
    )  # nothing pending; the gateway is down: a warning only
    assert "metrics not pushed" in capsys.readouterr().err


def test_a_readings_table_of_an_earlier_release_is_migrated_to_the_sent_at_key(
    postgres_database: str,
) -> None:
    old = [c for c in COLUMNS if c[0] != "sent_at"]
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA wenu")
        cols = ", ".join(f"{name} {pg} NOT NULL" for name, pg, _ in old)
        conn.execute(f"CREATE TABLE wenu.readings ({cols}, measured_at TIMESTAMPTZ NOT NULL, "
                     "PRIMARY KEY (device, seq, ch, idx))")  # fmt: skip
        for _ in range(2):  # idempotent
            for statement in sql.pg_schema("wenu"):
                conn.execute(statement)
        key = conn.execute(
            "SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = 'wenu.readings'::regclass AND i.indisprimary"
        ).fetchone()
    assert key is not None and key[0] == sorted(("device", "seq", "sent_at", "ch", "idx"))
