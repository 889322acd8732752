"""Company Stats on the moto server's DynamoDB: 50,000 readings over 2.3 days across DST changes give the
SAME table in order, shuffled within the lateness with re-deliveries, and with two crashes mid-flush.

Two series (a Santiago counter that restarts, a Madrid gauge), one reading per 8 s each: moto takes 10-20 ms
per PutItem, so the run is sized by its window items (about 570 per run), not by its readings.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest
from aiobotocore.session import get_session

from tests.support.stats import (
    LATENESS_S,
    SERIES,
    clock,
    comparable,
    deliveries,
    run,
    run_with_crashes,
    scenario,
)  # fmt: skip
from wenu_stream.aws.provision import ensure_stats_table
from wenu_stream.aws.stats_store import DynamoStatsStore
from wenu_stream.cli.main import main
from wenu_stream.config import load_config
from wenu_stream.devtools.emulator import Stack
from wenu_stream.stats.sink import StatsSink
from wenu_stream.timewindows import to_ms

pytestmark = pytest.mark.integration


@pytest.fixture
async def ddb(aws_stack: Stack) -> AsyncIterator[Any]:
    async with get_session().create_client("dynamodb") as client:
        yield client


def table(name: str) -> str:
    ensure_stats_table(load_config({}, {"stats.table": name}), {})
    return name


def scan(name: str) -> list[dict[str, Any]]:
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=name, ConsistentRead=True)
    return [item for page in pages for item in page["Items"]]


def sink(client: Any, name: str) -> StatsSink:
    return StatsSink(DynamoStatsStore(client, name), lateness_s=LATENESS_S, ttl_months=13, clock=clock)


@pytest.mark.slow
async def test_order_duplicates_and_crashes_leave_identical_tables(ddb: Any, unique_name: str) -> None:
    readings = scenario(50_000, step_s=8, series_list=[SERIES[1], SERIES[2]])
    names = [table(f"{unique_name}-{run_id}") for run_id in "abc"]

    totals = await run(sink(ddb, names[0]), deliveries(readings), batch=500, flush_every=10_000)
    assert totals == {"applied": 50_000, "late": 0, "replayed": 0, "invalid": 0}
    shuffled = deliveries(readings, shuffle=True, duplicates=0.05, seed=11)
    totals = await run(sink(ddb, names[1]), shuffled, batch=500, flush_every=10_000)
    assert totals["applied"] == 50_000 and totals["late"] == 0 and totals["replayed"] >= 2_000

    def store() -> DynamoStatsStore:
        return DynamoStatsStore(ddb, names[2])

    schedule = [(15_000, 10**9), (25_000, 60), (35_000, 10**9), (42_000, 20)]  # two of them die mid-flush
    crashes = await run_with_crashes(
        store, deliveries(readings, shuffle=True, seed=12), schedule, batch=500, flush_every=10_000
    )
    assert crashes == 2

    tables = [comparable(scan(n)) for n in names]
    assert tables[0] == tables[1]
    assert tables[0] == tables[2]
    months = [v for (pk, _), v in tables[0].items() if pk.endswith("#1mo")]
    assert sum(int(v["count"]["N"]) for v in months) == 50_000
    assert (
        len(tables[0]) > 2 * 2 * 96
    )  # every 15-minute window of two series over more than two days, and more


async def test_a_santiago_day_of_23_hours_starts_at_1am(ddb: Any, unique_name: str) -> None:
    name = table(unique_name)
    series = SERIES[0][0]
    readings = scenario(70, step_s=3600, series_list=[SERIES[0]])
    await run(sink(ddb, name), deliveries(readings), batch=500)
    days = {i["start"]["S"]: i["end"]["S"] for i in scan(name) if i["pk"]["S"] == f"{series}#1d"}
    assert days["2026-09-06T01:00:00-03:00"] == "2026-09-07T00:00:00-03:00"
    spans = [dt.datetime.fromisoformat(e) - dt.datetime.fromisoformat(s) for s, e in days.items()]
    assert dt.timedelta(hours=23) in spans and dt.timedelta(hours=24) in spans


@pytest.mark.slow
async def test_query_command_prints_windows_with_offsets_and_hides_expired_ones(
    ddb: Any, unique_name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = table(unique_name)
    readings = scenario(150, step_s=3600, series_list=[SERIES[3]])  # a Madrid counter over six days
    await run(sink(ddb, name), deliveries(readings), batch=500)
    counter = SERIES[3][0]
    expired = scan(name)[0] | {"pk": {"S": f"{counter}#1d"}, "sk": {"N": str(to_ms(dt.datetime(2026, 9, 30, 22, tzinfo=dt.UTC)))},
                               "expires_at": {"N": "1000"}, "count": {"N": "999"}}  # fmt: skip
    boto3.client("dynamodb").put_item(TableName=name, Item=expired)
    monkeypatch.setenv("WENU_STATS_TABLE", name)
    monkeypatch.setenv("WENU_CATALOG_URL", f"sqlite:///{unique_name}-no-catalog.db")  # no units: the raw rows
    args = ["stats", "query", "--series", counter, "--window", "1d", "--from", "2026-09-30T00:00:00+02:00",
            "--to", "2026-11-01T00:00:00+01:00", "-o", "json"]  # fmt: skip
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["start"] for r in rows][:3] == ["2026-10-23T00:00:00+02:00", "2026-10-24T00:00:00+02:00",
                                              "2026-10-25T00:00:00+02:00"]  # fmt: skip
    assert rows[2]["end"] == "2026-10-26T00:00:00+01:00"  # the day of 25 hours
    assert sum(r["count"] for r in rows) == 150  # the expired item (count 999) is not shown
    assert set(rows[0]) == {"series", "window", "start", "end", "count", "first", "last", "consumption"}
    assert all(r["consumption"] > 0 for r in rows[1:])


def test_sink_has_the_stats_name() -> None:
    assert StatsSink.name == "stats"
