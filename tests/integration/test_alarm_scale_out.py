"""Scale-out and back under continuous traffic: exactly one notification per transition, every round.

Alarms workers join one after the other (each new one steals leases from the
busy ones, as on an ECS scale-out), then leave again (SIGTERM, as on a
scale-in), while a producer keeps putting the fleet's readings. Nothing is
killed: every notification must arrive exactly once, as in a single-worker run.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.aws import create_stream
from tests.integration.test_alarms_app import (
    alarms_env,
    expected_moves,
    moves,
    prepare_alarms,
    received,
    start_alarms_worker,
)
from tests.support.effects import wait_for
from tests.support.records import KEYS
from tests.support.scenario import FAULTS, write_keyring
from wenu_stream.devtools.simulate import SimulationConfig, generate, parse_faults
from wenu_stream.devtools.simulate.generator import expected_alarms
from wenu_stream.devtools.simulate.producer import KinesisProducer, Pacer, put_all

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def producer(stream: str, seed: int) -> tuple[SimulationConfig, threading.Thread]:
    """A 4-shard stream and a thread putting a fleet with anomalies over about 40 s of wall time."""
    create_stream(stream, 4)
    kinesis = KinesisProducer(stream)
    sim = SimulationConfig(
        devices=60, interval_s=1.0, duration_s=60, seed=seed, aggregate=10, faults=parse_faults(FAULTS),
        shard_ranges=kinesis.open_shard_ranges(), anomalies=True,
    )  # fmt: skip
    pacer = Pacer("relative", start_ms=sim.start_ms, rate=1.5)
    thread = threading.Thread(target=put_all, args=(generate(sim, KEYS), kinesis.put, pacer), daemon=True)
    return sim, thread


@pytest.mark.slow
@pytest.mark.parametrize("round_", [1, 2])
def test_scale_out_to_three_workers_and_back_notifies_each_transition_once(
    aws_stack: object, unique_name: str, tmp_path: Path, round_: int
) -> None:
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    sim, putting = producer(unique_name, seed=20 + round_)
    env = alarms_env(unique_name, unique_name, keyring, WENU_LEASE_FAILOVER_MS=3000)
    _, queue = prepare_alarms(env, unique_name, sim)
    putting.start()
    first = start_alarms_worker(env | {"WENU_KINESIS_IDLE_EXIT_S": "4"}, tmp_path / "w0.log")
    wait_for(lambda: "lease_taken" in (tmp_path / "w0.log").read_text(), 120, "worker 0 holds leases")
    joined = []
    for n in (1, 2):  # scale out: each newcomer steals from the busy ones
        joined.append(start_alarms_worker(env, tmp_path / f"w{n}.log"))
        wait_for(
            lambda n=n: "lease_taken" in (tmp_path / f"w{n}.log").read_text(),
            120,
            f"worker {n} holds a lease",
        )
        time.sleep(2)
    for n, worker in reversed(list(enumerate(joined, 1))):  # scale in, one at a time, while the producer puts
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, (tmp_path / f"w{n}.log").read_text()[-3000:]
        time.sleep(2)
    assert putting.is_alive(), "the traffic must go on through the scale-out and back (slow the producer)"
    putting.join()
    assert first.wait(timeout=240) == 0, (tmp_path / "w0.log").read_text()[-3000:]
    got, want = moves(received(queue)), expected_moves(expected_alarms(sim))
    assert {m: n for m, n in got.items() if n > 1} == {}  # nothing twice
    assert got == want
