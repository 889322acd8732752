"""A stop (SIGTERM) of `wenu-stream run` completes within ECS's stop timeout while S3 black-holes every upload.

The worker has read a batch it cannot make durable (its staging and dead-letter uploads wait in the black hole;
the call deadline, 60 s by default, is longer than the stop grace): SIGTERM makes it wait ``kinesis.stop_grace_s``
for that batch, then give it back unchecked and exit. The checkpoint stays where it was before the batch; the next
run, with S3 back, replays it, and nothing is lost or staged twice.

``pytest tests/integration/test_stop_under_faults.py -s`` prints the stop time.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.fixtures.aws import create_stream
from tests.integration.test_readiness_faults import staged_rows_with_repeats
from tests.support.effects import last_checkpoints, tail_sequences, wait_for
from tests.support.fault_proxy import fault_proxy
from tests.support.probes import readyz
from tests.support.records import KEYS
from tests.support.scenario import FAULTS, prepare, run_config, start_worker, write_keyring
from wenu_stream.devtools.emulator.stack import free_port
from wenu_stream.devtools.simulate import SimulationConfig, Tally, fleet_catalog, generate, parse_faults
from wenu_stream.devtools.simulate.producer import KinesisProducer, Pacer, put_all
from wenu_stream.ops.report import dead_letter_counts, shard_totals, sum_totals

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STOP_GRACE_S = 3.0
ECS_STOP_TIMEOUT_S = 30.0


def test_sigterm_during_an_s3_black_hole_exits_in_time_unchecked_and_the_next_run_replays(
    aws_stack: object, unique_name: str, tmp_path: Path
) -> None:
    port, keyring = free_port(), write_keyring(tmp_path / "keys.json", KEYS)
    create_stream(unique_name, 1)
    producer = KinesisProducer(unique_name)
    sim = SimulationConfig(
        devices=6, interval_s=1.0, duration_s=20, seed=8, aggregate=0, faults=parse_faults(FAULTS)
    )
    records, tally = list(generate(sim, KEYS)), Tally()
    put_all(records[::2], producer.put, Pacer("none"), tally=tally)
    env = run_config(
        unique_name,
        f"{unique_name}-w",
        keyring,
        WENU_METRICS_PORT=port,
        WENU_KINESIS_STOP_GRACE_S=STOP_GRACE_S,
        WENU_AWS_STALL_S=0.5,
    )
    config = prepare(env, fleet_catalog(sim))
    moto = urlsplit(os.environ["AWS_ENDPOINT_URL"])
    with fault_proxy(moto.hostname or "127.0.0.1", moto.port or 80) as proxy:
        worker = start_worker(env | {"AWS_ENDPOINT_URL_S3": proxy.url}, tmp_path / "worker.log")
        try:
            before = tail_sequences(unique_name)
            wait_for(
                lambda: last_checkpoints(config.lease_table) == before, 60, "the first half checkpointed"
            )
            wait_for(lambda: readyz(port)[0] == 200, 30, "ready")
            proxy.hold()
            put_all(records[1::2], producer.put, Pacer("none"), tally=tally)
            wait_for(
                lambda: "call s3 PutObject in flight" in readyz(port)[1], 30, "an upload in the black hole"
            )
            asked = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=ECS_STOP_TIMEOUT_S)
            took = time.monotonic() - asked
        finally:
            if worker.poll() is None:
                worker.kill()
    log = (tmp_path / "worker.log").read_text()
    print(f"SIGTERM during an S3 black hole: exit {code} after {took:.1f}s (stop grace {STOP_GRACE_S:g}s)")
    assert took < ECS_STOP_TIMEOUT_S and code == 0
    assert "stop_grace_expired" in log
    assert last_checkpoints(config.lease_table) == before  # the held batch was not checkpointed
    again = start_worker(env | {"WENU_KINESIS_IDLE_EXIT_S": "2"}, tmp_path / "again.log")
    assert again.wait(timeout=120) == 0
    assert last_checkpoints(config.lease_table) == tail_sequences(unique_name)
    expected, totals = tally.result(), sum_totals(shard_totals(config))
    assert (totals.records, totals.accepted, totals.duplicates) == (
        expected.records,
        expected.accepted,
        expected.duplicates,
    )
    assert totals.rejected == expected.rejected == dead_letter_counts(config)
    rows = staged_rows_with_repeats(config)
    assert rows and len(rows) == len(set(rows))


def test_sigterm_while_the_start_up_checks_wait_on_a_black_hole_exits_at_once(
    aws_stack: object, unique_name: str, tmp_path: Path
) -> None:
    """A scale-in right after a start, with S3 black-holed: the checks only read, so the stop does not wait."""
    create_stream(unique_name, 1)
    env = run_config(unique_name, f"{unique_name}-w", write_keyring(tmp_path / "keys.json", KEYS))
    prepare(env, fleet_catalog(SimulationConfig(devices=2)))
    moto = urlsplit(os.environ["AWS_ENDPOINT_URL"])
    with fault_proxy(moto.hostname or "127.0.0.1", moto.port or 80) as proxy:
        proxy.hold()
        worker = start_worker(env | {"AWS_ENDPOINT_URL_S3": proxy.url}, tmp_path / "worker.log")
        try:
            wait_for(lambda: proxy.requests > 0, 60, "the bucket check in the black hole")
            asked = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=ECS_STOP_TIMEOUT_S)
            took = time.monotonic() - asked
        finally:
            if worker.poll() is None:
                worker.kill()
    print(f"SIGTERM during the start-up checks: exit {code} after {took:.1f}s")
    assert code == 0 and took < ECS_STOP_TIMEOUT_S
    assert "stopped_before_start" in (tmp_path / "worker.log").read_text()
