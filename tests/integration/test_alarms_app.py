"""The alarms application end to end: `wenu-stream run --app alarms` over a simulated stream with anomalies.

The subscribed queue receives exactly the notifications the simulator says the
anomalies must raise, once each, also when the worker is killed -9 twice mid-stream.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.aws import create_stream
from tests.integration.alarm_support import drain, subscribe
from tests.support.effects import checkpointed, wait_for
from tests.support.records import KEYS
from tests.support.scenario import FAULTS, prepare, run_config, write_keyring
from wenu_stream.aws.provision import ensure_alarm_tables, ensure_alarm_topic
from wenu_stream.config import Config
from wenu_stream.devtools.simulate import SimulationConfig, fleet_catalog, generate, parse_faults
from wenu_stream.devtools.simulate.anomalies import ExpectedAlarm
from wenu_stream.devtools.simulate.generator import expected_alarms
from wenu_stream.devtools.simulate.producer import KinesisProducer, Pacer, put_all
from wenu_stream.drivers.native.leases import read_leases

pytestmark = pytest.mark.integration

Move = tuple[str, str, str, str]  # (rule, series, state, transition_id)


def fill_with_anomalies(
    stream: str, *, devices: int = 60, interval_s: float = 1.0, duration_s: float = 45, seed: int = 5
) -> SimulationConfig:
    """Create a 4-shard ``stream`` and put a fleet with faults and one anomaly per rule type, as fast as it goes."""
    create_stream(stream, 4)
    producer = KinesisProducer(stream)
    sim = SimulationConfig(
        devices=devices,
        interval_s=interval_s,
        duration_s=duration_s,
        seed=seed,
        aggregate=10,
        faults=parse_faults(FAULTS),
        shard_ranges=producer.open_shard_ranges(),
        anomalies=True,
    )
    put_all(generate(sim, KEYS), producer.put, Pacer("none"))
    return sim


def alarms_env(stream: str, name: str, keyring: Path, **extra: Any) -> dict[str, str]:
    """Settings of an alarms worker of run ``name``: its own leases, state, alarm tables and topic."""
    return run_config(
        stream,
        name,
        keyring,
        WENU_APP="alarms",
        WENU_ALARMS_STATE_TABLE=f"{name}-alarm-state",
        WENU_ALARMS_TRANSITIONS_TABLE=f"{name}-alarm-tr",
        WENU_ALARMS_TOPIC_NAME=name,
        **extra,
    )


def prepare_alarms(env: dict[str, str], name: str, sim: SimulationConfig) -> tuple[Config, str]:
    """Provision a run's tables and topic, import the fleet's catalog, subscribe a queue; return config and queue."""
    config = prepare(env, fleet_catalog(sim))
    ensure_alarm_tables(config, {})
    (topic,) = ensure_alarm_topic(config, {})
    return config, subscribe(topic.removeprefix("sns topic "), name)


def start_alarms_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`wenu-stream run --app alarms` as a subprocess with the test's stack and settings."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("WENU_")} | env
    return subprocess.Popen(
        [sys.executable, "-m", "wenu_stream", "run", "--app", "alarms"],
        env=full,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),
    )


def received(queue: str) -> list[dict[str, Any]]:
    return [body for body, _ in drain(queue)]


def moves(bodies: list[dict[str, Any]]) -> Counter[Move]:
    return Counter((b["rule"], b["series"], b["state"], b["transition_id"]) for b in bodies)


def expected_moves(expected: list[ExpectedAlarm]) -> Counter[Move]:
    return Counter((e.rule, e.series, e.state, e.transition_id) for e in expected)


@pytest.mark.slow
def test_the_queue_receives_exactly_the_expected_notifications(
    aws_stack: object, unique_name: str, tmp_path: Path
) -> None:
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    sim = fill_with_anomalies(unique_name)
    env = alarms_env(unique_name, unique_name, keyring, WENU_KINESIS_IDLE_EXIT_S=3)
    config, queue = prepare_alarms(env, unique_name, sim)

    worker = start_alarms_worker(env, tmp_path / "alarms.log")
    assert worker.wait(timeout=240) == 0, (tmp_path / "alarms.log").read_text()[-3000:]

    bodies, expected = received(queue), expected_alarms(sim)
    assert moves(bodies) == expected_moves(expected)
    assert {(b["rule"], b["state"]) for b in bodies} >= {
        (r, "firing")
        for r in ("voltage-high", "voltage-jump", "temperature-stuck", "power-silent", "water-daily")
    }
    by_id = {e.transition_id: e for e in expected}
    for body in bodies:
        assert (body["at"], body["severity"]) == (
            by_id[body["transition_id"]].at,
            by_id[body["transition_id"]].severity,
        )
    assert all(lease.checkpoint.isdigit() for lease in read_leases(config.lease_table))
    firing = subprocess.run(
        [sys.executable, "-m", "wenu_stream", "alarms", "list", "--state", "firing", "-o", "jsonl"],
        env={k: v for k, v in os.environ.items() if not k.startswith("WENU_")} | env,
        capture_output=True,
        text=True,
        check=True,
    )
    still = {(row["rule"], row["series"]) for row in map(json.loads, firing.stdout.splitlines())}
    assert still == {
        (e.rule, e.series) for e in expected if e.rule == "water-daily"
    }  # its day outlasts the run


@pytest.mark.slow
def test_kill_minus_9_twice_publishes_the_notifications_of_an_uncrashed_run(
    aws_stack: object, unique_name: str, tmp_path: Path
) -> None:
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    sim = fill_with_anomalies(unique_name, devices=80, duration_s=60, seed=8)

    ref_env = alarms_env(unique_name, f"{unique_name}-ref", keyring, WENU_KINESIS_IDLE_EXIT_S=3)
    _, ref_queue = prepare_alarms(ref_env, f"{unique_name}-ref", sim)
    worker = start_alarms_worker(ref_env, tmp_path / "ref.log")
    assert worker.wait(timeout=240) == 0, (tmp_path / "ref.log").read_text()[-3000:]
    reference = moves(received(ref_queue))

    # Crashed run: small batches so that a kill lands mid-batch; two kill -9 before a final worker.
    env = alarms_env(unique_name, f"{unique_name}-crash", keyring, WENU_KINESIS_MAX_RECORDS=7)
    crash, queue = prepare_alarms(env, f"{unique_name}-crash", sim)
    for attempt in range(2):
        worker = start_alarms_worker(env, tmp_path / f"crash{attempt}.log")
        wait_for(lambda n=2 + attempt: checkpointed(crash) >= n, 120, f"worker {attempt} checkpoints")
        time.sleep(0.4 * (attempt + 1))
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    worker = start_alarms_worker(env | {"WENU_KINESIS_IDLE_EXIT_S": "3"}, tmp_path / "final.log")
    assert worker.wait(timeout=240) == 0, (tmp_path / "final.log").read_text()[-3000:]

    finals = [
        json.loads(line) for line in (tmp_path / "final.log").read_text().splitlines() if line.startswith("{")
    ]
    assert (
        next(e["records"] for e in finals if e.get("event") == "worker_stopped") > 0
    )  # the kills cut work short
    assert moves(received(queue)) == reference == expected_moves(expected_alarms(sim))
