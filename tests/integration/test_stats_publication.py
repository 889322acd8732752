"""Deferred publication (``stats.publish_s``): fewer window items written, the same windows read.

Open windows stay in their series' state item until published; the readers
(CLI and API) take them from there, so what they show does not depend on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest
from aiobotocore.session import get_session

from tests.support.stats import SERIES, clock, deliveries, run, scenario
from wenu_stream.aws.provision import ensure_stats_table
from wenu_stream.aws.readers import latest_windows, query_windows, window_row
from wenu_stream.aws.stats_store import DynamoStatsStore
from wenu_stream.config import load_config
from wenu_stream.devtools.emulator import Stack
from wenu_stream.stats.sink import StatsSink
from wenu_stream.timewindows import WIDTHS

pytestmark = pytest.mark.integration
NOW_S = 1_900_000_000


@pytest.fixture
async def ddb(aws_stack: Stack) -> AsyncIterator[Any]:
    async with get_session().create_client("dynamodb") as client:
        yield client


def rows(table: str, series: str, width: str, **kw: Any) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb")
    if "limit" not in kw:
        items, _ = query_windows(client, table, series, width, 0, 2**53, NOW_S, **kw)
        return [window_row(i, times=True) for i in items]
    out, cursor = [], None
    while True:
        items, cursor = query_windows(client, table, series, width, 0, 2**53, NOW_S, cursor=cursor, **kw)
        out += [window_row(i, times=True) for i in items]
        if cursor is None:
            return out


@pytest.mark.slow
async def test_deferred_windows_read_the_same_as_eager_ones(ddb: Any, unique_name: str) -> None:
    readings = scenario(3_000, step_s=120, series_list=SERIES[:2])
    tables = {}
    for publish_s in (0, 86_400):
        name = tables[publish_s] = f"{unique_name}-{publish_s}"
        ensure_stats_table(load_config({}, {"stats.table": name}), {})
        sink = StatsSink(DynamoStatsStore(ddb, name), lateness_s=3600, ttl_months=13, clock=clock,
                         publish_s=publish_s)  # fmt: skip
        await run(sink, deliveries(readings), batch=100, flush_every=300)
    scans = {p: boto3.client("dynamodb").scan(TableName=t)["Count"] for p, t in tables.items()}
    assert scans[86_400] < scans[0]  # the open windows of the deferred run have no items yet
    for series, *_ in SERIES[:2]:
        for width in WIDTHS:
            eager = rows(tables[0], series, width)
            assert eager and rows(tables[86_400], series, width) == eager
            newest_first = rows(tables[86_400], series, width, limit=3, newest_first=True)
            assert newest_first == eager[::-1]
        latest = [
            latest_windows(boto3.client("dynamodb"), t, [series], "1mo", NOW_S) for t in tables.values()
        ]
        assert window_row(latest[0][series]) == window_row(latest[1][series])
