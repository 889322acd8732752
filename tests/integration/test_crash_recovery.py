"""Nothing lost, nothing counted twice: kill -9 workers mid-batch, restart, and compare with an uncrashed run."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.support.effects import checkpointed, letters_of, staged_rows, stats_table, wait_for
from tests.support.records import KEYS
from tests.support.scenario import (
    fill_stream,
    fleet_catalog_for,
    prepare,
    run_config,
    start_worker,
    write_keyring,
)
from wenu_stream.drivers.native.leases import read_leases
from wenu_stream.ops.report import dead_letter_counts, shard_totals, sum_totals

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_kill_minus_9_twice_gives_the_same_effects_as_an_uncrashed_run(
    aws_stack: object, unique_name: str, tmp_path: Path
) -> None:
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    expected = fill_stream(unique_name, KEYS, devices=30, duration_s=100)
    assert expected.rejected and expected.duplicates, "the scenario must exercise faults"

    # Uncrashed reference run.
    ref_env = run_config(unique_name, f"{unique_name}-ref", keyring, WENU_KINESIS_IDLE_EXIT_S=3)
    catalog = fleet_catalog_for(30)
    ref = prepare(ref_env, catalog)
    worker = start_worker(ref_env, tmp_path / "ref.log")
    assert worker.wait(timeout=240) == 0, (tmp_path / "ref.log").read_text()[-3000:]

    # Crashed run: small batches so that a kill lands mid-batch; two kill -9 before a final worker.
    env = run_config(unique_name, f"{unique_name}-crash", keyring, WENU_KINESIS_MAX_RECORDS=7)
    crash = prepare(env, catalog)
    for attempt in range(2):
        worker = start_worker(env, tmp_path / f"crash{attempt}.log")
        wait_for(
            lambda attempt=attempt: checkpointed(crash) >= 2 + attempt, 120, f"worker {attempt} checkpoints"
        )
        time.sleep(0.4 * (attempt + 1))
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    final_env = env | {"WENU_KINESIS_IDLE_EXIT_S": "3"}
    worker = start_worker(final_env, tmp_path / "final.log")
    assert worker.wait(timeout=240) == 0, (tmp_path / "final.log").read_text()[-3000:]

    # The kills really interrupted the work: the final worker still had records to do.
    finals = [
        json.loads(line) for line in (tmp_path / "final.log").read_text().splitlines() if line.startswith("{")
    ]
    assert next(e["records"] for e in finals if e.get("event") == "worker_stopped") > 0

    got, want = sum_totals(shard_totals(crash)), sum_totals(shard_totals(ref))
    assert got == want
    # Every user record ended accepted, duplicate or dead-lettered, as the producer intended.
    assert got.records == expected.records
    assert got.accepted == expected.accepted
    assert got.duplicates + got.stale == expected.duplicates
    assert got.rejected == expected.rejected
    assert dead_letter_counts(crash) == dead_letter_counts(ref) == expected.rejected
    assert letters_of(crash) == letters_of(ref)  # the same records, though a replay may batch them otherwise
    assert staged_rows(crash) == staged_rows(ref)
    ref_stats, crash_stats = stats_table(ref), stats_table(crash)
    assert ref_stats and crash_stats == ref_stats
    months = [v for (pk, _), v in ref_stats.items() if pk.endswith("#1mo")]
    assert sum(int(v["count"]["N"]) for v in months) == len(staged_rows(ref))  # every reading counted once
    unique_keys = {row[:4] for row in staged_rows(ref)}  # (device, seq, ch, idx)
    assert len(unique_keys) == len(staged_rows(ref)) >= expected.accepted
    assert all(lease.checkpoint.isdigit() for lease in read_leases(crash.lease_table))
