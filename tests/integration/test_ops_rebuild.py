"""Reset with --rebuild against real workers: refused while one runs; afterwards a full replay equals the first run."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import boto3
import pytest

from tests.support.records import KEYS
from tests.support.scenario import (
    fill_stream,
    fleet_catalog_for,
    prepare,
    run_config,
    start_worker,
    write_keyring,
)
from wenu_stream.cli import main
from wenu_stream.driver.leases import TRIM_HORIZON, read_leases
from wenu_stream.ops.rebuild import get_marker
from wenu_stream.report import dead_letter_counts, shard_totals, sum_totals

pytestmark = pytest.mark.integration


def test_full_rebuild_replays_to_the_totals_of_an_uncrashed_run(aws_stack: object, unique_name: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    expected = fill_stream(unique_name, KEYS, shards=2, devices=16, duration_s=40)
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    env = run_config(unique_name, unique_name, keyring)
    config = prepare(env, fleet_catalog_for(16))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    once = env | {"WENU_KINESIS_IDLE_EXIT_S": "2"}
    assert start_worker(once, tmp_path / "w1.log").wait(timeout=240) == 0
    reference, letters = sum_totals(shard_totals(config)), dead_letter_counts(config)
    assert reference.accepted == expected.accepted

    live = start_worker(env, tmp_path / "live.log")  # runs until stopped
    try:
        deadline = time.monotonic() + 60
        while not all(lease.lease_owner for lease in read_leases(config.lease_table)):
            assert time.monotonic() < deadline, "the live worker never took the leases"
            time.sleep(0.1)
        held = read_leases(config.lease_table)
        assert main(["checkpoints", "reset", "--to", "trim-horizon", "--rebuild"]) == 3
        assert "scale the ECS service" in capsys.readouterr().err
        assert [lease.checkpoint for lease in read_leases(config.lease_table)] == [lease.checkpoint for lease in held]
    finally:
        live.send_signal(signal.SIGTERM)
        assert live.wait(timeout=60) == 0

    assert main(["checkpoints", "reset", "--to", "trim-horizon", "--rebuild"]) == 0
    leases = read_leases(config.lease_table)
    assert {lease.checkpoint for lease in leases} == {TRIM_HORIZON}
    ddb = boto3.client("dynamodb")
    for lease in leases:
        marker = get_marker(ddb, config.sinks.state_table, config.app, config.kinesis.stream, lease.lease_key)
        assert marker is not None and marker.generation == 1 and marker.applies(lease.checkpoint)
    assert start_worker(once, tmp_path / "w2.log").wait(timeout=240) == 0
    assert sum_totals(shard_totals(config)) == reference  # recounted from scratch, not added on top
    assert dead_letter_counts(config) == letters
    assert all(lease.checkpoint.isdigit() for lease in read_leases(config.lease_table))
