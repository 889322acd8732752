"""Stats item layout: exact round trips, readable attributes, fences that sort like positions; purity."""

from __future__ import annotations

import ast
import datetime as dt
import pathlib

from wenu_stream.model import Position
from wenu_stream.stats import items
from wenu_stream.stats.aggregates import Point, WindowAgg
from wenu_stream.stats.engine import Entry, Fence, SeriesState

STATE = SeriesState(series="acme-hq.main.energy", kind="counter", timezone="Europe/Madrid", newest=1_792_800_000_000,
                    fence=Fence("shardId-000000000003", 49_000_000_000_000_000_000_000_000_000_000_000_000_000_000, 2),
                    buffer=[Entry(1_792_800_000_000, 7, 0, "dev-1", 12_500_000)])  # fmt: skip
AGG = WindowAgg(
    count=3,
    sum_micro=37_500_001,
    min=0.1,
    max=1e-7,
    consumption_micro=1_250_000,
    first=Point(1_792_796_400_000, 5, 0, "dev-1", 10.0),
    last=Point(1_792_800_000_000, 7, 0, "dev-1", 12.5),
)


def test_a_window_item_round_trips_and_reads_well() -> None:
    fence = items.fence_text(STATE.fence) or ""
    key = ("1d", int(dt.datetime.fromisoformat("2026-10-25T00:00:00+02:00").timestamp() * 1000))  # 25 hours
    item = items.window_item(STATE, key, AGG, fence, ttl_months=13)
    assert items.decode_window(item) == (STATE.series, key, AGG, fence)
    assert item["pk"] == {"S": "acme-hq.main.energy#1d"} and item["sk"] == {"N": str(key[1])}
    assert (item["start"]["S"], item["end"]["S"]) == (
        "2026-10-25T00:00:00+02:00",
        "2026-10-26T00:00:00+01:00",
    )
    assert item["consumption"] == {"N": "1.250000"} and item["count"] == {"N": "3"}
    assert "sum" not in item and item["first"] == {"N": "10.0"}
    expires = dt.datetime(2027, 11, 25, 23, tzinfo=dt.UTC)  # the window's end (23:00Z) plus 13 months
    assert item["expires_at"] == {"N": str(int(expires.timestamp()))}


def test_a_state_item_round_trips_with_its_redo() -> None:
    redo = [items.RedoEntry("15m", 1_792_799_100_000, AGG)]
    item = items.state_item(STATE, redo, expires=2_000_000_000)
    assert items.decode_state(item) == (STATE, items.fence_text(STATE.fence), redo)
    assert item["pk"] == {"S": "acme-hq.main.energy#state"}


def test_fences_sort_like_positions_within_a_shard() -> None:
    def text(seq: int, sub: int) -> str:
        return items.fence_text(Fence.at("shardId-1", Position(seq, sub))) or ""

    ordered = [(9, 0), (9, 1), (10, 0), (10**55, 0)]
    assert sorted(text(*p) for p in reversed(ordered)) == [text(*p) for p in ordered]
    assert text(10, 0).startswith(items.shard_prefix("shardId-1"))


def test_the_stats_package_is_pure() -> None:
    forbidden = {"boto3", "botocore", "aiobotocore", "os", "time", "prometheus_client", "structlog"}
    for path in pathlib.Path(items.__file__).parent.glob("*.py"):
        if (
            path.name == "sink.py"
        ):  # the use case (I/O through the StatsStore port); layers: tests/unit/test_layers.py
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            assert not {n.split(".")[0] for n in names} & forbidden, (path.name, names)


def test_fences_sort_by_rebuild_generation_before_position() -> None:
    def text(seq: int, generation: int) -> str:
        return items.fence_text(Fence.at("shardId-1", Position(seq), generation)) or ""

    ordered = [text(10**40, 0), text(1, 1), text(10**40, 1), text(1, 2), text(1, 12)]
    assert ordered == sorted(ordered)
    assert [items.fence_generation(t) for t in ordered] == [0, 1, 1, 2, 12]
    assert items.fence_generation("") == 0 and text(5, 0) == items.fence_text(Fence("shardId-1", 5, 0))
    fence = Fence.at("shardId-1", Position(7), 2)
    assert fence.covers("shardId-1", Position(7), 2) and not fence.covers("shardId-1", Position(8), 2)
    assert not fence.covers("shardId-1", Position(1), 3)  # a newer generation recomputes
    assert fence.covers("shardId-1", Position(10**9), 1)  # an older one never writes over it
    assert not fence.covers("shardId-2", Position(1), 1)  # another shard (a reshard) is never covered
