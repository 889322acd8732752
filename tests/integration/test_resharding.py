"""Resharding under traffic on kinesis-local, both applications, native driver: the effects of a run without it.

A simulated fleet (faults, re-sent duplicates, one anomaly per alarm rule type,
KPL aggregates) is put twice: on a reference stream of two shards that never
changes, and on a stream whose first shard is split while both workers consume,
after which the upper child is merged with the second shard. The producer packs
its aggregates with the shard map of the moment (like the KPL, one shard per
aggregate). Totals, Company Stats windows, staged warehouse rows and the
notifications (exactly one per expected transition) must equal the reference's,
and no ledger entry may be left pending.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fixtures.aws import create_stream
from tests.integration.alarm_support import drain, subscribe
from tests.support.effects import staged_rows, stats_table
from tests.support.records import KEYS
from tests.support.scenario import FAULTS, prepare, run_config, start_worker, write_keyring
from wenu_stream.aws.provision import ensure_alarm_tables, ensure_alarm_topic
from wenu_stream.config import Config
from wenu_stream.devtools.simulate import SimulationConfig, fleet_catalog, generate, parse_faults
from wenu_stream.devtools.simulate.generator import UserRecord, aggregate_users, expected_alarms
from wenu_stream.devtools.simulate.producer import KinesisProducer, Pacer, put_all
from wenu_stream.ops.report import shard_totals, sum_totals
from wenu_stream.warehouse.rows import WarehouseRow

pytestmark = pytest.mark.integration

# The fleet of ``simulation()``: EM-000003 (hash key 0.025 of the range, in the first shard's lower half) is
# silent from 1 s until 32.7 s (power-silent fires at 30.7 s); EM-000001 (0.273, the upper half) reads
# voltage-high, firing at 23.1 s, ok at 25.1 s. The first shard splits at 15 s (simulated), so the silence
# and its firing fall in the lower child; the upper child merges with the second shard at 24 s, between
# the firing and the ok.
# EM-000003 dies instead (its series must still fire, from the child that holds it).
SPLIT_AT_S, MERGE_AT_S = 15, 24
SILENT, SILENT_SERIES = "EM-000003", "globex-dc1.em-000003.power"
FIELDS = WarehouseRow.__struct_fields__
POSITION = ("shard_id", "sequence_number", "sub_sequence")
Move = tuple[str, str, str, str]  # (rule, series, state, transition_id)


def simulation() -> SimulationConfig:
    return SimulationConfig(
        devices=24,
        interval_s=2.0,
        duration_s=150,
        seed=21,
        faults=parse_faults(FAULTS),
        anomalies=True,
    )


def cut(users: Sequence[UserRecord], *at_s: float) -> list[list[UserRecord]]:
    """The user records in phases, cut at these simulated times (seconds after the first emission)."""
    t0, phases = users[0].emit_ms, [[] for _ in range(len(at_s) + 1)]
    for user in users:
        phases[sum(user.emit_ms - t0 >= s * 1000 for s in at_s)].append(user)
    return phases


def user_records(sim: SimulationConfig) -> list[UserRecord]:
    return [record.users[0] for record in generate(sim, KEYS)]


class Apps:
    """Both applications of one run over ``stream``: their settings, tables, topic and subscribed queue."""

    def __init__(self, stream: str, name: str, tmp_path: Path, sim: SimulationConfig) -> None:
        keyring = write_keyring(tmp_path / "keys.json", KEYS)
        idle = {"WENU_KINESIS_IDLE_EXIT_S": "8"}
        self.processing_env = run_config(stream, f"{name}-p", keyring, **idle)
        self.alarms_env = run_config(
            stream,
            f"{name}-a",
            keyring,
            WENU_APP="alarms",
            WENU_ALARMS_STATE_TABLE=f"{name}-alarm-state",
            WENU_ALARMS_TRANSITIONS_TABLE=f"{name}-alarm-tr",
            WENU_ALARMS_TOPIC_NAME=name,
            **idle,
        )
        catalog = fleet_catalog(sim)
        self.processing: Config = prepare(self.processing_env, catalog)
        self.alarms: Config = prepare(self.alarms_env, catalog)
        ensure_alarm_tables(self.alarms, {})
        (topic,) = ensure_alarm_topic(self.alarms, {})
        self.queue = subscribe(topic.removeprefix("sns topic "), name)
        self.logs = (tmp_path / f"{name}-processing.log", tmp_path / f"{name}-alarms.log")
        self.workers: list[Any] = []

    def start(self) -> None:
        self.workers = [
            start_worker(self.processing_env, self.logs[0]),
            start_worker(self.alarms_env, self.logs[1]),
        ]

    def wait(self) -> None:
        for worker, log in zip(self.workers, self.logs, strict=True):
            assert worker.wait(timeout=300) == 0, log.read_text()[-3000:]

    def effects(self) -> dict[str, Any]:
        totals = sum_totals(shard_totals(self.processing))
        return {
            "totals": (totals.accepted, totals.duplicates, totals.stale, totals.rejected),
            "stats": stats_table(self.processing),
            "staged": Counter(without_position(row) for row in staged_rows(self.processing)),
        }

    def notifications(self) -> Counter[Move]:
        bodies = [body for body, _ in drain(self.queue)]
        return Counter((b["rule"], b["series"], b["state"], b["transition_id"]) for b in bodies)

    def pending(self) -> list[tuple[str, str, str]]:
        """Ledger entries still pending: (series, sort key, shard)."""
        pages = (
            boto3.client("dynamodb")
            .get_paginator("scan")
            .paginate(TableName=self.alarms.alarms.transitions_table, ConsistentRead=True)
        )
        return [
            (i["series"]["S"], i["sk"]["S"], i.get("pending_shard", {}).get("S", ""))
            for page in pages
            for i in page["Items"]
            if i["status"]["S"] == "pending"
        ]


def without_position(row: tuple[object, ...]) -> tuple[object, ...]:
    """A staged row without the shard and sequence numbers it was read at (they differ between the streams)."""
    return tuple(value for name, value in zip(FIELDS, row, strict=True) if name not in POSITION)


def put(stream: str, users: Sequence[UserRecord], shard_map: tuple[tuple[int, int], ...] = ()) -> int:
    """Put user records packed into aggregates (like the KPL: one shard per aggregate) by ``shard_map``, or
    the stream's current map; return how many the producer put again after a wrong-shard landing."""
    producer = KinesisProducer(stream)
    records = aggregate_users(users, 10, shard_map or producer.open_shard_ranges())
    put_all(records, producer.put, Pacer("none"))
    return producer.stats.rerouted


def open_shards(stream: str) -> dict[str, tuple[int, int]]:
    ranges: dict[str, tuple[int, int]] = {}
    for shard in boto3.client("kinesis").list_shards(StreamName=stream)["Shards"]:
        if "EndingSequenceNumber" not in shard["SequenceNumberRange"]:
            r = shard["HashKeyRange"]
            ranges[shard["ShardId"]] = (int(r["StartingHashKey"]), int(r["EndingHashKey"]))
    return ranges


def await_shards(stream: str, count: int) -> dict[str, tuple[int, int]]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shards = open_shards(stream)
        status = boto3.client("kinesis").describe_stream_summary(StreamName=stream)
        if len(shards) == count and status["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
            return shards
        time.sleep(0.05)
    raise TimeoutError(f"{stream}: {count} open shards")


def split(stream: str, shard: str, at: int) -> dict[str, tuple[int, int]]:
    before = len(open_shards(stream))
    boto3.client("kinesis").split_shard(StreamName=stream, ShardToSplit=shard, NewStartingHashKey=str(at))
    return await_shards(stream, before + 1)


def merge(stream: str, shard: str, adjacent: str) -> dict[str, tuple[int, int]]:
    before = len(open_shards(stream))
    boto3.client("kinesis").merge_shards(StreamName=stream, ShardToMerge=shard, AdjacentShardToMerge=adjacent)
    return await_shards(stream, before - 1)


def holder(shards: dict[str, tuple[int, int]], key: int) -> str:
    return next(s for s, (lo, hi) in shards.items() if lo <= key <= hi)


@pytest.mark.slow
@pytest.mark.parametrize("stale_map", [False, True], ids=["fresh-map", "stale-map"])
def test_a_split_then_a_merge_under_traffic_has_the_effects_of_a_run_without_resharding(
    use_kinesis_local: str, aws_stack: object, unique_name: str, tmp_path: Path, stale_map: bool
) -> None:
    """stale-map: the producer keeps the shard map it started with, as a KPL does until a put lands on another
    shard than predicted; it then puts those records again, and consumers drop the misrouted aggregate."""
    sim = simulation()
    users = user_records(sim)
    t0 = users[0].emit_ms
    users = [u for u in users if u.partition_key != SILENT or u.emit_ms - t0 < 10_000]  # never heard again
    phases = cut(users, SPLIT_AT_S, MERGE_AT_S)

    reference_stream = f"{unique_name}-ref"
    create_stream(reference_stream, 2)
    reference = Apps(reference_stream, f"{unique_name}-ref", tmp_path, sim)
    put(reference_stream, users)
    reference.start()
    reference.wait()

    create_stream(unique_name, 2)
    run = Apps(unique_name, unique_name, tmp_path, sim)
    run.start()
    initial = tuple(sorted(open_shards(unique_name).values())) if stale_map else ()
    rerouted = put(unique_name, phases[0], initial)
    time.sleep(2)  # the workers are reading the first shards
    shards = open_shards(unique_name)
    first = holder(shards, 0)
    shards = split(unique_name, first, 2**126)  # the first shard's lower and upper halves
    rerouted += put(unique_name, phases[1], initial)
    time.sleep(2)
    upper, second = holder(shards, 2**126), holder(shards, 2**127)
    merge(unique_name, upper, second)
    rerouted += put(unique_name, phases[2], initial)
    run.wait()

    assert bool(rerouted) == stale_map
    assert (sum_totals(shard_totals(run.processing)).misrouted > 0) == stale_map
    assert run.pending() == []
    notified = reference.notifications()
    assert notified == expected(sim) - Counter(
        [("power-silent", f"{SILENT_SERIES}", "ok", ok_of_silent(sim))]
    )
    assert run.notifications() == notified
    ours, theirs = run.effects(), reference.effects()
    assert ours["totals"] == theirs["totals"]
    assert ours["stats"] == theirs["stats"]
    assert ours["staged"] == theirs["staged"]


def ok_of_silent(sim: SimulationConfig) -> str:
    (ok,) = [e.transition_id for e in expected_alarms(sim) if e.series == SILENT_SERIES and e.state == "ok"]
    return ok


def expected(sim: SimulationConfig) -> Counter[Move]:
    return Counter((e.rule, e.series, e.state, e.transition_id) for e in expected_alarms(sim))
