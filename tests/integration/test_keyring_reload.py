"""A device key provisioned while the worker runs is used after SIGHUP (or ``keyring.reload_s``), no redeploy."""

from __future__ import annotations

import signal
from pathlib import Path

import boto3
import pytest

from tests.fixtures.aws import create_stream
from tests.integration.test_crash_recovery import wait_for
from tests.support.records import KEYS, envelope
from tests.support.scenario import fleet_catalog_for, prepare, run_config, start_worker, write_keyring
from wenu_stream.devtools.simulate.fleet import build_fleet
from wenu_stream.ops.report import dead_letter_counts, shard_totals, sum_totals
from wenu_stream.records.payload import Message, Reading

pytestmark = pytest.mark.integration


def put_k2(stream: str, device: str, seqs: range) -> None:
    records = [
        {
            "PartitionKey": device,
            "Data": envelope(
                Message(
                    device=device,
                    seq=seq,
                    sent_at=1_764_300_000_000 + seq,
                    readings=(Reading(ch="active_power_w", t=1_764_300_000_000 + seq, v=1.0),),
                ),
                "k2",
            ),
        }
        for seq in seqs
    ]
    boto3.client("kinesis").put_records(StreamName=stream, Records=records)


def test_sighup_reads_a_new_device_key_and_its_records_are_accepted(
    aws_stack: object, unique_name: str, tmp_path: Path
) -> None:
    keyring = write_keyring(tmp_path / "keys.json", {"k1": KEYS["k1"]})  # k2 is not provisioned yet
    create_stream(unique_name, 1)
    (device,) = [d.id for d in build_fleet(1)]
    env = run_config(unique_name, unique_name, keyring, WENU_KEYRING_RELOAD_S=0)  # only SIGHUP reloads
    config = prepare(env, fleet_catalog_for(1))
    worker = start_worker(env, tmp_path / "worker.log")
    put_k2(unique_name, device, range(1, 6))
    wait_for(
        lambda: dead_letter_counts(config).get("unknown_key") == 5, 120, "the first records dead-lettered"
    )
    write_keyring(keyring, KEYS)  # the key is provisioned
    worker.send_signal(signal.SIGHUP)  # read again before the next batch
    put_k2(unique_name, device, range(6, 11))
    wait_for(lambda: sum_totals(shard_totals(config)).accepted == 5, 120, "the later records accepted")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    assert dead_letter_counts(config) == {"unknown_key": 5}  # only those that came before the key
    assert '"added":["k2"]' in (tmp_path / "worker.log").read_text()
