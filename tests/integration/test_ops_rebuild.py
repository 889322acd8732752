"""Reset with --rebuild against real workers: refused while one runs; afterwards the replay recomputes everything.

The scenario is an operator's: the catalog had a wrong scale, the fix is
imported, and a rebuild replay must leave the totals of an uncrashed run and
the stats windows of a run that had the right catalog from the start.
"""

from __future__ import annotations

import copy
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.integration.test_alarms_app import (
    alarms_env,
    expected_moves,
    fill_with_anomalies,
    moves,
    prepare_alarms,
    received,
    start_alarms_worker,
)
from tests.support.records import KEYS
from tests.support.scenario import (
    fill_stream,
    fleet_catalog_for,
    import_catalog,
    prepare,
    run_config,
    start_worker,
    write_keyring,
)
from wenu_stream.aws.state import get_marker
from wenu_stream.cli.main import main
from wenu_stream.devtools.simulate import fleet_catalog
from wenu_stream.devtools.simulate.generator import expected_alarms
from wenu_stream.drivers.native.leases import read_leases
from wenu_stream.model import TRIM_HORIZON
from wenu_stream.ops.report import dead_letter_counts, shard_totals, sum_totals

pytestmark = pytest.mark.integration
IDLE_EXIT = {"WENU_KINESIS_IDLE_EXIT_S": "2"}


def windows(table: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every stats window item of ``table`` without its fence (which names positions and the generation)."""
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return {
        (i["pk"]["S"], i["sk"]["N"]): {k: v for k, v in i.items() if k != "fence"}
        for page in pages
        for i in page["Items"]
        if not i["pk"]["S"].endswith("#state")
    }


@pytest.mark.slow
def test_a_rebuild_after_a_catalog_fix_recomputes_totals_and_stats(
    aws_stack: object,
    unique_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expected = fill_stream(unique_name, KEYS, shards=2, devices=16, duration_s=40)
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    right = fleet_catalog_for(16)
    wrong = copy.deepcopy(right)
    for channel in (
        ch for c in wrong["companies"] for site in c["sites"] for d in site["devices"] for ch in d["channels"]
    ):
        channel["scale"] = 1000.0  # say, Wh entered where the meters send kWh

    ref_env = run_config(unique_name, f"{unique_name}-ref", keyring)
    ref_config = prepare(ref_env, right)
    assert start_worker(ref_env | IDLE_EXIT, tmp_path / "ref.log").wait(timeout=240) == 0
    right_stats = windows(ref_config.stats.table)

    env = run_config(unique_name, unique_name, keyring)
    config = prepare(env, wrong)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    once = env | IDLE_EXIT
    assert start_worker(once, tmp_path / "w1.log").wait(timeout=240) == 0
    reference, letters = sum_totals(shard_totals(config)), dead_letter_counts(config)
    assert reference.accepted == expected.accepted
    wrong_stats = windows(config.stats.table)
    assert wrong_stats.keys() == right_stats.keys() and wrong_stats != right_stats
    import_catalog(config, right)  # the fix

    live = start_worker(env, tmp_path / "live.log")  # runs until stopped
    try:
        deadline = time.monotonic() + 60
        while not all(lease.lease_owner for lease in read_leases(config.lease_table)):
            assert time.monotonic() < deadline, "the live worker never took the leases"
            time.sleep(0.1)
        held = read_leases(config.lease_table)
        assert main(["checkpoints", "reset", "--to", "trim-horizon", "--rebuild"]) == 3
        assert "wenu-stream service pause" in capsys.readouterr().err
        assert [lease.checkpoint for lease in read_leases(config.lease_table)] == [
            lease.checkpoint for lease in held
        ]
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
    assert windows(config.stats.table) == right_stats  # recomputed with the fixed catalog, not skipped
    assert all(lease.checkpoint.isdigit() for lease in read_leases(config.lease_table))


@pytest.mark.slow
def test_a_rebuild_after_an_alarm_rule_fix_publishes_exactly_what_the_fix_reveals(
    aws_stack: object, unique_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    sim = fill_with_anomalies(unique_name)
    env = alarms_env(unique_name, unique_name, keyring)
    config, queue = prepare_alarms(env, unique_name, sim)
    wrong = fleet_catalog(sim)
    for rule in wrong["alarm_rules"]:
        if rule["id"] == "voltage-high":
            rule["value"], rule["clear"] = 2500, 2400  # a threshold typed ten times too high
    import_catalog(config, wrong)
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    assert (
        start_alarms_worker(env | {"WENU_KINESIS_IDLE_EXIT_S": "3"}, tmp_path / "a1.log").wait(timeout=240)
        == 0
    )
    expected = expected_moves(expected_alarms(sim))
    hidden = Counter({m: n for m, n in expected.items() if m[0] == "voltage-high"})
    assert hidden and moves(received(queue)) == expected - hidden

    import_catalog(config, fleet_catalog(sim))  # the fix
    assert main(["checkpoints", "reset", "--to", "trim-horizon", "--rebuild"]) == 0
    assert (
        start_alarms_worker(env | {"WENU_KINESIS_IDLE_EXIT_S": "3"}, tmp_path / "a2.log").wait(timeout=240)
        == 0
    )
    assert moves(received(queue)) == hidden  # what the fix reveals, and nothing published before again
