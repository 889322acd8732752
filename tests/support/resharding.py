"""Resharding scenarios on kinesis-local, shared by the native-driver and KCL-daemon tests: a simulated fleet put
in three phases around a split and a merge, both applications' settings and what they left in the stores."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3

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
    """The fleet's user records in emission order, without what the silent device sends after 10 s."""
    users = [record.users[0] for record in generate(sim, KEYS)]
    t0 = users[0].emit_ms
    return [u for u in users if u.partition_key != SILENT or u.emit_ms - t0 < 10_000]  # never heard again


def reshard_under_traffic(
    stream: str,
    users: Sequence[UserRecord],
    *,
    stale_map: bool,
    settle_s: float = 2,
    reading: Callable[[], None] = lambda: None,
) -> int:
    """Put ``users`` into ``stream`` (two shards, created by the caller) in three phases: the first shard
    splits in halves after the first (once ``reading`` returned), the upper half merges with the second
    shard after the second. ``stale_map``: the producer
    keeps the map it started with. Return how many user records the producer put again (wrong shard)."""
    phases = cut(users, SPLIT_AT_S, MERGE_AT_S)
    initial = tuple(sorted(open_shards(stream).values())) if stale_map else ()
    rerouted = put(stream, phases[0], initial)
    reading()
    time.sleep(settle_s)  # the consumers are reading the first shards
    shards = split(stream, holder(open_shards(stream), 0), 2**126)
    rerouted += put(stream, phases[1], initial)
    time.sleep(settle_s)
    merge(stream, holder(shards, 2**126), holder(shards, 2**127))
    return rerouted + put(stream, phases[2], initial)


def expected_notifications(sim: SimulationConfig) -> Counter[Move]:
    """What the simulation's anomalies notify, without the silent device's ok (it never comes back)."""
    return expected(sim) - Counter([("power-silent", SILENT_SERIES, "ok", ok_of_silent(sim))])


class Apps:
    """Both applications of one run over ``stream``: their settings, tables, topic and subscribed queue."""

    def __init__(self, stream: str, name: str, tmp_path: Path, sim: SimulationConfig, **extra: str) -> None:
        keyring = write_keyring(tmp_path / "keys.json", KEYS)
        idle = {"WENU_KINESIS_IDLE_EXIT_S": "8", **extra}
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

    def start_native(self) -> None:
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
            "totals": (totals.accepted, totals.duplicates, totals.stale, without_misrouted(totals.rejected)),
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


def ok_of_silent(sim: SimulationConfig) -> str:
    (ok,) = [e.transition_id for e in expected_alarms(sim) if e.series == SILENT_SERIES and e.state == "ok"]
    return ok


def expected(sim: SimulationConfig) -> Counter[Move]:
    return Counter((e.rule, e.series, e.state, e.transition_id) for e in expected_alarms(sim))


def reference_run(name: str, tmp_path: Path, sim: SimulationConfig, users: Sequence[UserRecord]) -> Apps:
    """Both applications (native workers) over ``users`` on a two-shard stream that never changes, finished."""
    create_stream(name, 2)
    reference = Apps(name, name, tmp_path, sim)
    put(name, users)
    reference.start_native()
    reference.wait()
    return reference


def without_misrouted(rejected: dict[str, int]) -> dict[str, int]:
    """Dead letters by reason but ``misrouted`` (what a stale producer map adds; the producer put them again)."""
    return {reason: n for reason, n in rejected.items() if reason != "misrouted"}
