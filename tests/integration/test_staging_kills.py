"""Ten kill -9 of the processing worker under a backlog: staging holds every reading once, the warehouse too.

A worker killed after it staged a file and before it checkpointed leaves that
file behind; its successor replays from the checkpoint and cuts its files
elsewhere. On resume it deletes what lies past the checkpoint, so after ten
kills the staged rows are exactly the distinct readings, as in an uncrashed
run, and PostgreSQL loads the same rows.
"""

from __future__ import annotations

import gzip
import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import boto3
import msgspec
import pytest

from tests.integration.test_sequence_resets import load
from tests.support.effects import keys_under, wait_for
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
from wenu_stream.warehouse.rows import decode_csv

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def staged(config: Any) -> list[tuple[object, ...]]:
    """Every staged row, repeats included."""
    s3, rows = boto3.client("s3"), []
    for key in keys_under(config, config.warehouse.staging_prefix):
        body = gzip.decompress(s3.get_object(Bucket=config.sinks.bucket, Key=key)["Body"].read())
        rows += [msgspec.structs.astuple(row) for row in decode_csv(body)]
    return rows


def progress(config: Any) -> tuple[str, ...]:
    try:
        return tuple(lease.checkpoint for lease in read_leases(config.lease_table))
    except Exception:  # noqa: BLE001 - the table is not there yet
        return ()


def test_ten_kills_leave_every_reading_staged_once_and_loaded_as_uncrashed(
    aws_stack: object,
    unique_name: str,
    tmp_path: Path,
    postgres_database: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    fill_stream(unique_name, KEYS, devices=40, duration_s=160, aggregate=0)
    catalog = fleet_catalog_for(40)
    ref_env = run_config(unique_name, f"{unique_name}-ref", keyring, WENU_KINESIS_IDLE_EXIT_S=3)
    ref = prepare(ref_env, catalog)
    assert start_worker(ref_env, tmp_path / "ref.log").wait(timeout=300) == 0

    env = run_config(
        unique_name,
        f"{unique_name}-kill",
        keyring,
        WENU_KINESIS_MAX_RECORDS=4,
        WENU_KINESIS_CHECKPOINT_INTERVAL_S=0.3,
    )
    killed = prepare(env, catalog)
    rng = random.Random(3)
    for n in range(10):
        seen = progress(killed)
        worker = start_worker(env, tmp_path / f"kill{n}.log")
        wait_for(lambda seen=seen: progress(killed) != seen, 120, f"worker {n} checkpoints")
        time.sleep(rng.uniform(0.1, 0.8))
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    final = start_worker(env | {"WENU_KINESIS_IDLE_EXIT_S": "3"}, tmp_path / "final.log")
    assert final.wait(timeout=300) == 0, (tmp_path / "final.log").read_text()[-3000:]
    finals = [json.loads(x) for x in (tmp_path / "final.log").read_text().splitlines() if x.startswith("{")]
    assert (
        next(e["records"] for e in finals if e.get("event") == "worker_stopped") > 0
    )  # the kills cut work short
    superseded = sum(
        (tmp_path / f"kill{n}.log").read_text().count("staged_files_superseded") for n in range(10)
    ) + (tmp_path / "final.log").read_text().count("staged_files_superseded")

    rows, reference = staged(killed), staged(ref)
    assert len(rows) == len(set(rows))  # distinct == total: no reading staged twice
    key = lambda r: (r[0], r[1], r[16], r[2], r[3])  # noqa: E731 - (device, seq, sent_at, ch, idx)
    assert {key(r) for r in rows} == {key(r) for r in reference} and len(reference) == len(set(reference))
    print(f"staged rows {len(rows)}, files superseded on resume: {superseded}")
    loaded = load(env, "killed", postgres_database, monkeypatch, capsys)
    assert loaded == load(ref_env, "ref", postgres_database, monkeypatch, capsys)
    assert len(loaded) == len(reference)
