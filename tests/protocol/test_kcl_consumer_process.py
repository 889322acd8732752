"""consumers/processing.py as the MultiLangDaemon runs it (a child process on stdin/stdout), with the real
runtime against the local AWS stack: the KCL path minus Java."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from tests.fixtures.aws import create_stream
from tests.protocol.fakes import checkpoint_ok, initialize, process_records, record, script
from tests.support.catalog import SPEC_DOCUMENT
from tests.support.effects import stats_table
from tests.support.records import KEYS, envelope, message
from tests.support.scenario import prepare, run_config, write_keyring
from wenu_stream.aws.dead_letters import iter_letters, letter_prefix
from wenu_stream.aws.provision import ensure_bucket, ensure_state_table
from wenu_stream.aws.state import pos_key
from wenu_stream.config import load_config
from wenu_stream.records.payload import Message, Reading

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SHARD = "shardId-000000000003"


@pytest.mark.slow
def test_poison_records_are_dead_lettered_then_checkpointed(
    aws_stack: object, unique_name: str, tmp_path: Path
) -> None:
    config = load_config({}, {"sinks.bucket": unique_name, "sinks.state_table": unique_name})
    ensure_bucket(config, {})
    ensure_state_table(config, {})
    assert SHARD in create_stream(unique_name, 4)  # a fresh shard looks its parents up in the stream
    keyring = tmp_path / "keyring.json"
    keyring.write_text(json.dumps({"k1": base64.b64encode(bytes(32)).decode()}))
    env = {key: value for key, value in os.environ.items() if not key.startswith("WENU_")}
    env |= {
        "WENU_KEYRING_FILE": str(keyring),
        "WENU_SINKS_BUCKET": unique_name,
        "WENU_KINESIS_STREAM": unique_name,
        "WENU_SINKS_STATE_TABLE": unique_name,
        "WENU_KINESIS_CHECKPOINT_INTERVAL_S": "0",
    }
    stdin = script(
        initialize(SHARD),
        process_records(record("1001", data=b"\x01"), record("1002", data=b"")),
        checkpoint_ok("1002", 0),
        {"action": "leaseLost"},
    )

    done = subprocess.run(
        [sys.executable, str(ROOT / "consumers" / "processing.py")],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    messages = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert messages == [
        {"action": "status", "responseFor": "initialize"},
        {"action": "checkpoint", "sequenceNumber": "1002", "subSequenceNumber": 0},
        {"action": "status", "responseFor": "processRecords"},
        {"action": "status", "responseFor": "leaseLost"},
    ]
    prefix = letter_prefix("dead-letter/", "processing", unique_name)
    letters = list(iter_letters(boto3.client("s3"), unique_name, prefix))
    assert [(lt.document.shard_id, lt.document.sequence_number) for lt in letters] == [
        (SHARD, "1001"),
        (SHARD, "1002"),
    ]
    items = boto3.client("dynamodb").scan(TableName=unique_name)["Items"]
    # The state saved at the checkpointed position (what a restart from 1002 loads).
    assert [(i["pk"]["S"], i["pos"]["S"]) for i in items] == [
        (f"processing#{unique_name}#{SHARD}", pos_key("1002"))
    ]


@pytest.mark.slow
def test_a_record_the_stats_sink_refuses_is_dead_lettered_and_the_child_goes_on(
    aws_stack: object, unique_name: str, tmp_path: Path
) -> None:
    """On the KCL path a refusal no longer exits 70 (which took the daemon and every shard of the task down)."""
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    config = prepare(run_config(unique_name, unique_name, keyring), SPEC_DOCUMENT)
    assert SHARD in create_stream(unique_name, 4)
    env = {key: value for key, value in os.environ.items() if not key.startswith("WENU_")}
    env |= run_config(
        unique_name, unique_name, keyring, WENU_KINESIS_CHECKPOINT_INTERVAL_S="0", WENU_STATS_PUBLISH_S="0"
    )
    poison = Message(
        device="EM-000001", seq=2, sent_at=1_764_300_060_100,
        readings=(Reading(ch="active_power_w", t=1_764_300_060_000, v=1e200),),
    )  # fmt: skip
    stdin = script(
        initialize(SHARD),
        process_records(
            record("1001", data=envelope(message("EM-000001", 1))),
            record("1002", data=envelope(poison)),
            record("1003", data=envelope(message("EM-000001", 3, t=1_764_300_120_000))),
        ),
        checkpoint_ok("1003", 0),
        {"action": "leaseLost"},
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "consumers" / "processing.py")],
        input=stdin, env=env, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    messages = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert messages[:3] == [
        {"action": "status", "responseFor": "initialize"},
        {"action": "checkpoint", "sequenceNumber": "1003", "subSequenceNumber": 0},
        {"action": "status", "responseFor": "processRecords"},
    ]
    prefix = letter_prefix(config.sinks.dead_letter_prefix, "processing", unique_name)
    letters = list(iter_letters(boto3.client("s3"), config.sinks.bucket, prefix))
    assert [(lt.document.sequence_number, lt.document.reason) for lt in letters] == [
        ("1002", "sink_rejected")
    ]
    assert "too large for a stats window" in letters[0].document.detail
    windows = [key for key in stats_table(config) if key[0].startswith("acme-hq.main.power#15m")]
    assert windows  # the records around the poison were counted
