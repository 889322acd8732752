"""Dead-letter show and re-drive on moto S3 and kinesalite, and end to end with real workers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fixtures.aws import create_stream
from tests.support.records import KEYS, RING, envelope, message
from tests.support.scenario import (
    fill_stream,
    fleet_catalog_for,
    prepare,
    run_config,
    start_worker,
    write_keyring,
)
from wenu_stream.aws.dead_letters import (
    encode_lines,
    group_by_reason,
    iter_letters,
    iter_objects,
    letter_prefix,
    object_key,
    to_document,
)
from wenu_stream.cli.main import main
from wenu_stream.ingest.batch import DeadLetter
from wenu_stream.model import Position
from wenu_stream.ops import redrive
from wenu_stream.ops.report import dead_letter_counts, shard_totals, sum_totals
from wenu_stream.records.crypto import KeyRing

pytestmark = pytest.mark.integration


class FlakyKinesis:
    """A real client whose PutRecords refuses the records of device ``dev-1`` with a throttling error
    (no emulator throttles) until ``failing`` is cleared."""

    def __init__(self, client: Any) -> None:
        self.client, self.failing = client, True

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        refused = [self.failing and r["PartitionKey"] == "redrive:dev-1" for r in Records]
        kept = [r for r, no in zip(Records, refused, strict=True) if not no]
        out = iter(self.client.put_records(StreamName=StreamName, Records=kept)["Records"] if kept else [])
        answers = [
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}
            if no
            else next(out)
            for no in refused
        ]
        return {"FailedRecordCount": sum(refused), "Records": answers}


def store_letters(bucket: str, stream: str, letters: list[DeadLetter], batch: int = 4) -> list[str]:
    """Store ``letters`` as the consumers do, ``batch`` letters a batch; return the object keys."""
    s3, keys = boto3.client("s3"), []
    docs = [to_document("processing", stream, "shardId-000000000000", lt) for lt in letters]
    for start in range(0, len(docs), batch):
        for reason, group in group_by_reason(docs[start : start + batch]).items():
            keys.append(object_key("dead-letter/", "processing", stream, reason, group[0].shard_id, group[0]))
            s3.put_object(Bucket=bucket, Key=keys[-1], Body=encode_lines(group))
    return keys


def read_all(stream: str, shard: str) -> list[dict[str, Any]]:
    kinesis = boto3.client("kinesis")
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    return kinesis.get_records(ShardIterator=it, Limit=10_000)["Records"]


def test_partial_redrive_finishes_when_run_again(aws_stack: object, unique_name: str) -> None:
    (shard,) = create_stream(unique_name, 1)
    boto3.client("s3").create_bucket(Bucket=unique_name)
    letters = [
        DeadLetter(
            position=Position(100 + i),
            reason="unknown_key",
            detail="no key k2",
            raw=envelope(message(f"dev-{i % 3}", i), "k2"),
            partition_key=f"dev-{i % 3}",
            arrival_ms=1_764_300_000_000,
        )
        for i in range(10)
    ]
    letters.append(
        DeadLetter(
            position=Position(200),
            reason="unknown_key",
            detail="no key k2",
            raw=envelope(message("dev-x", 1), "k2")[:-1] + b"\0",
            partition_key="dev-x",
            arrival_ms=1_764_300_000_000,
        )
    )  # tampered: fails authentication once k2 is known
    store_letters(unique_name, unique_name, letters)
    prefix = letter_prefix("dead-letter/", "processing", unique_name)
    s3, flaky = boto3.client("s3"), FlakyKinesis(boto3.client("kinesis"))
    found = list(iter_objects(s3, unique_name, prefix))
    assert len(found) == 3  # three batches of one reason
    where = {
        "s3": s3,
        "kinesis": flaky,
        "bucket": unique_name,
        "stream": unique_name,
        "prefix": "dead-letter/",
    }
    dry = redrive.redrive(found, RING, **where, dry_run=True)
    assert (dry.redriven, dry.still_rejected, read_all(unique_name, shard)) == (10, {"auth_failed": 1}, [])
    first = redrive.redrive(found, RING, **where, sleep=lambda _: None)
    assert (first.redriven, first.put_failed, first.reclassified) == (7, 3, 1)  # dev-1: seq 1, 4, 7
    stays = [
        (lt.document.reason, lt.document.sequence_number) for lt in iter_letters(s3, unique_name, prefix)
    ]
    assert sorted(stays) == [("auth_failed", "200"), ("unknown_key", "101"), ("unknown_key", "104"),
                             ("unknown_key", "107")]  # fmt: skip
    flaky.failing = False
    again = redrive.redrive(list(iter_objects(s3, unique_name, prefix)), RING, **where)
    assert (again.redriven, again.put_failed, again.still_rejected) == (
        first.put_failed,
        0,
        {"auth_failed": 1},
    )
    remaining = [lt.key for lt in iter_letters(s3, unique_name, prefix)]
    assert len(remaining) == 1 and "/auth_failed/" in remaining[0]
    assert [o.key for o in iter_objects(s3, unique_name, prefix)] == remaining  # emptied objects are gone
    put_back = read_all(unique_name, shard)
    assert sorted(r["Data"] for r in put_back) == sorted(lt.raw for lt in letters[:10])
    assert {r["PartitionKey"] for r in put_back} == {"redrive:dev-0", "redrive:dev-1", "redrive:dev-2"}


@pytest.mark.slow
def test_show_decodes_with_the_current_key_ring(
    aws_stack: object,
    unique_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    boto3.client("s3").create_bucket(Bucket=unique_name)
    letter = DeadLetter(
        position=Position(7),
        reason="unknown_key",
        detail="no key k2",
        raw=envelope(message("dev-1", 42), "k2"),
        partition_key="dev-1",
        arrival_ms=1_764_300_000_000,
    )
    (key,) = store_letters(unique_name, unique_name, [letter])
    monkeypatch.setenv("WENU_SINKS_BUCKET", unique_name)
    monkeypatch.setenv("WENU_KINESIS_STREAM", unique_name)
    monkeypatch.setenv("WENU_KEYRING_FILE", str(write_keyring(tmp_path / "k1.json", {"k1": KEYS["k1"]})))
    assert main(["dlq", "show", key]) == 0
    assert json.loads(capsys.readouterr().out)["decoded"]["reason"] == "unknown_key"
    assert main(["dlq", "show", key, "--keyring", str(write_keyring(tmp_path / "all.json", KEYS))]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (
        shown["decoded"]["accepted"]
        and shown["decoded"]["message"]["seq"] == 42
        and shown["reason"] == "unknown_key"
    )
    assert main(["dlq", "show", key + ".nope"]) == 4  # not found
    assert main(["dlq", "redrive", "--reason", "no_such_reason"]) == 2


@pytest.mark.slow
def test_missing_key_letters_flow_through_once_after_the_key_is_added(
    aws_stack: object,
    unique_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = fill_stream(unique_name, KEYS, shards=2, devices=16, duration_s=60)
    keyring = write_keyring(tmp_path / "keys.json", {"k1": KEYS["k1"]})  # k2's devices cannot be read yet
    env = run_config(unique_name, unique_name, keyring, WENU_KINESIS_IDLE_EXIT_S=2)
    config = prepare(env, fleet_catalog_for(16))
    assert start_worker(env, tmp_path / "w1.log").wait(timeout=240) == 0, (tmp_path / "w1.log").read_text()[
        -3000:
    ]
    stuck = dead_letter_counts(config)
    assert stuck["unknown_key"] > expected.rejected.get("unknown_key", 0)
    assert sum_totals(shard_totals(config)).accepted < expected.accepted

    write_keyring(keyring, KEYS)  # the missing key is added to the ring
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["dlq", "redrive", "--reason", "unknown_key"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["redriven"] > 0 and summary["put_failed"] == 0
    assert dead_letter_counts(config) == expected.rejected  # only the letters that are really bad remain
    assert start_worker(env, tmp_path / "w2.log").wait(timeout=240) == 0, (tmp_path / "w2.log").read_text()[
        -3000:
    ]
    totals = sum_totals(shard_totals(config))
    assert totals.accepted == expected.accepted
    assert totals.duplicates + totals.stale == expected.duplicates
    assert dead_letter_counts(config) == expected.rejected  # the second run dead-lettered nothing new
    assert main(["dlq", "redrive"]) == 0  # nothing left that decodes
    assert json.loads(capsys.readouterr().out)["redriven"] == 0
    assert isinstance(RING, KeyRing)
