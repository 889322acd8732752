"""consumers/processing.py under the real KCL MultiLangDaemon (Java), on kinesis-local and moto.

The simulator fills the stream and says what the consumers must make of it
(``Outcomes``); the read-back helpers report what the processors made durable
(state-table totals per shard, dead letters). The daemon deaggregates KPL
records itself, so every user record reaches the processor as one record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from tests.fixtures.aws import create_stream
from tests.fixtures.kcl import KclDaemon, render_local, start_daemon
from tests.support.records import KEYS
from tests.support.scenario import FAULTS, fill_stream, fleet_catalog_for, prepare, run_config, write_keyring
from wenu_stream.config import Config
from wenu_stream.devtools.simulate import SimulationConfig, Tally, generate, parse_faults
from wenu_stream.devtools.simulate.outcomes import Outcomes
from wenu_stream.devtools.simulate.producer import KinesisProducer, Pacer, put_all
from wenu_stream.drivers.native.leases import read_leases
from wenu_stream.ops.report import dead_letter_counts, shard_totals, sum_totals

pytestmark = pytest.mark.e2e
DEVICES = 12


class Run:
    """One KCL application over one stream: its config (tables, bucket), rendered properties and log folder."""

    def __init__(self, stream: str, name: str, tmp_path: Path, kinesis_url: str, **properties: str) -> None:
        keyring = write_keyring(tmp_path / "keys.json", KEYS)
        self.env = run_config(stream, name, keyring, WENU_KINESIS_CHECKPOINT_INTERVAL_S="0.3")
        self.config: Config = prepare(self.env, fleet_catalog_for(DEVICES))
        moto = boto3.client("dynamodb").meta.endpoint_url
        self.properties = render_local(
            "processing",
            tmp_path,
            stream=stream,
            application=self.config.lease_table,
            kinesis_url=kinesis_url,
            dynamodb_url=moto,
            **properties,
        )
        self.tmp_path = tmp_path

    def start(self, daemons: list[KclDaemon], label: str, **properties: str) -> KclDaemon:
        path = self.properties
        if properties:
            path = self.tmp_path / f"{label}.properties"
            text = self.properties.read_text() + "".join(f"{k} = {v}\n" for k, v in properties.items())
            path.write_text(text)
        return start_daemon(daemons, path, self.env, self.tmp_path / f"{label}.log")

    def records_done(self) -> int:
        try:
            return sum_totals(shard_totals(self.config)).records
        except Exception:  # noqa: BLE001 - the state table may not answer while moto is busy
            return 0

    def checkpoints(self) -> dict[str, str]:
        try:
            return {lease.lease_key: lease.checkpoint for lease in read_leases(self.config.lease_table)}
        except Exception:  # noqa: BLE001 - KCL creates the lease table a while after start
            return {}


def wait_for(predicate: Callable[[], bool], what: str, daemons: list[KclDaemon], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        dead = [d for d in daemons if d.crashed()]
        if time.monotonic() > deadline or dead:
            logs = "\n---\n".join(d.tail() for d in (dead or [d for d in daemons if not d.stopped]))
            pytest.fail(f"{'a daemon exited' if dead else 'timed out'} waiting for {what}:\n{logs}")
        time.sleep(0.3)


def assert_effects(run: Run, expected: Outcomes) -> None:
    """Every user record accepted, dropped as a duplicate or dead-lettered exactly once, as the producer intended."""
    got = sum_totals(shard_totals(run.config))
    assert got.records == expected.user_records
    assert got.accepted == expected.accepted
    assert got.duplicates + got.stale == expected.duplicates
    assert got.rejected == expected.rejected
    assert dead_letter_counts(run.config) == expected.rejected


@pytest.mark.slow
def test_records_flow_to_checkpoints_and_a_kill_minus_9_mid_stream_loses_nothing_and_counts_nothing_twice(
    use_kinesis_local: str, unique_name: str, tmp_path: Path, kcl_daemons: list[KclDaemon]
) -> None:
    expected = fill_stream(unique_name, KEYS, shards=2, devices=DEVICES, duration_s=40, aggregate=0)
    assert expected.rejected and expected.duplicates, "the scenario must exercise faults"
    run = Run(unique_name, unique_name, tmp_path, use_kinesis_local)
    first = run.start(
        kcl_daemons, "first", workerId="worker-a", maxRecords="10"
    )  # small batches: killed mid-stream
    wait_for(lambda: any(c.isdigit() for c in run.checkpoints().values()), "a first checkpoint", kcl_daemons)
    first.kill()
    done_at_kill = run.records_done()
    assert 0 < done_at_kill < expected.user_records, "records flowed, and the kill interrupted the work"

    # Same worker id, as a task restarted in place: its leases are still assigned to it, so it resumes at once.
    # (A new id would wait for KCL 3.1.3's leader lock, held by the dead worker for 2 minutes, before the
    # leases are reassigned.)
    second = run.start(kcl_daemons, "second", workerId="worker-a")
    wait_for(
        lambda: run.records_done() == expected.user_records,
        "every record's effects after the restart",
        kcl_daemons,
    )
    wait_for(
        lambda: len(run.checkpoints()) == 2 and all(c.isdigit() for c in run.checkpoints().values()),
        "a sequence-number checkpoint on every lease",
        kcl_daemons,
    )
    second.stop()

    assert_effects(run, expected)
    resumed = [e for e in second.events() if e.get("event") == "shard_initialized"]
    assert {e["shard_id"] for e in resumed} == set(run.checkpoints())
    assert any(e["checkpoint"][0].isdigit() for e in resumed), "the restart resumed from a checkpoint"


@pytest.mark.slow
def test_two_daemons_share_a_four_shard_stream(
    use_kinesis_local: str, unique_name: str, tmp_path: Path, kcl_daemons: list[KclDaemon]
) -> None:
    expected = fill_stream(unique_name, KEYS, shards=4, devices=DEVICES, duration_s=60)
    run = Run(unique_name, unique_name, tmp_path, use_kinesis_local, maxLeasesForWorker="2")
    metrics_dir = (
        tmp_path / "prometheus"
    )  # the shard processes of both daemons write here (multiprocess mode)
    metrics_dir.mkdir()
    run.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    one = run.start(kcl_daemons, "one", workerId="worker-1")
    two = run.start(kcl_daemons, "two", workerId="worker-2")

    wait_for(lambda: run.records_done() == expected.user_records, "every record's effects", kcl_daemons, 120)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))  # what `wenu-stream serve-metrics` exports

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"app": "processing"} | labels)

    assert sample("wenu_records_total", outcome="accepted") == expected.accepted
    assert sample("wenu_leases_held") == 4
    assert (sample("wenu_checkpoints_total") or 0) >= 4
    one.stop()
    two.stop()

    assert_effects(run, expected)
    shards = [
        {e["shard_id"] for e in d.events() if e.get("event") == "shard_initialized"} for d in (one, two)
    ]
    assert len(shards[0]) == len(shards[1]) == 2
    assert shards[0] | shards[1] == set(run.checkpoints())


@pytest.mark.slow
def test_a_split_shard_is_processed_parent_first_and_children_inherit_its_duplicate_memory(
    use_kinesis_local: str, unique_name: str, tmp_path: Path, kcl_daemons: list[KclDaemon]
) -> None:
    # Half of a fleet's records go into one shard, which is split while the daemon reads it; the rest go to the
    # children. (The daemon starts before the split: kinesis-local's ListShards AT_TRIM_HORIZON also returns the
    # children, whose hash ranges overlap the parent's, and KCL refuses that listing on an empty lease table.)
    (parent,) = create_stream(unique_name, 1)
    kinesis = boto3.client("kinesis")
    producer = KinesisProducer(unique_name, kinesis)
    sim = SimulationConfig(
        devices=DEVICES, interval_s=2.0, duration_s=40, seed=23, aggregate=0, faults=parse_faults(FAULTS)
    )
    records, tally = list(generate(sim, KEYS)), Tally()
    half = len(records) // 2
    put_all(records[:half], producer.put, Pacer("none"), tally=tally)
    run = Run(unique_name, unique_name, tmp_path, use_kinesis_local)
    daemon = run.start(kcl_daemons, "daemon")
    wait_for(
        lambda: run.records_done() == sum(len(r.users) for r in records[:half]),
        "the parent read to its tip",
        kcl_daemons,
    )
    kinesis.split_shard(StreamName=unique_name, ShardToSplit=parent, NewStartingHashKey=str(2**127))
    while (
        kinesis.describe_stream_summary(StreamName=unique_name)["StreamDescriptionSummary"]["StreamStatus"]
        != "ACTIVE"
    ):
        time.sleep(0.05)
    put_all(records[half:], producer.put, Pacer("none"), tally=tally)
    expected = tally.result()

    wait_for(lambda: run.records_done() == expected.user_records, "every record's effects", kcl_daemons)
    wait_for(lambda: len(run.checkpoints()) == 3, "leases of the parent and both children", kcl_daemons)
    daemon.stop()

    assert_effects(run, expected)
    checkpoints = run.checkpoints()
    assert checkpoints.pop(parent) == "SHARD_END"
    events = daemon.events()
    ended = [i for i, e in enumerate(events) if e.get("event") == "shard_ended" and e["shard_id"] == parent]
    started: dict[
        str, tuple[int, dict[str, object]]
    ] = {}  # each shard's first start (a lease may move later)
    for i, e in enumerate(events):
        if e.get("event") == "shard_initialized":
            started.setdefault(e["shard_id"], (i, e))
    assert set(started) == {parent, *checkpoints}
    for child in checkpoints:
        index, event = started[child]
        assert index > ended[0] and str(event["timestamp"]) >= events[ended[0]]["timestamp"]
        assert event["parents"] == [parent] and event["devices_remembered"] == DEVICES
