"""The raw archive read back: Firehose's processor writes it, `archive replay` feeds it through the pipeline.

moto's Firehose does not pull from a Kinesis stream, so the test does Firehose's part: it reads the
stream, hands the records to the archive's processor (deploy/cdk/wenu_cdk/archive_processor.py) in
Firehose's event shape, and writes what the processor returns, concatenated and GZIP-compressed, under
the hourly prefixes of the stack's delivery stream. Everything after that is the product's: a replay
into fresh tables gives the stats windows and totals of the consumer that read the stream itself, a
second replay changes nothing, and a record Firehose delivered twice counts once.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import importlib.util
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.integration.test_ops_rebuild import IDLE_EXIT, windows
from tests.support.effects import stream_records
from tests.support.records import KEYS
from tests.support.scenario import (
    fill_stream,
    fleet_catalog_for,
    prepare,
    run_config,
    start_worker,
    write_keyring,
)
from wenu_stream.cli.main import main
from wenu_stream.ops.archive import hour_prefixes
from wenu_stream.ops.report import shard_totals, sum_totals

pytestmark = pytest.mark.integration
PROCESSOR = Path(__file__).resolve().parents[2] / "deploy" / "cdk" / "wenu_cdk" / "archive_processor.py"


def processor() -> Any:
    spec = importlib.util.spec_from_file_location("archive_processor", PROCESSOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def archive(stream: str, bucket: str, *, twice: int = 0) -> tuple[int, int]:
    """Do Firehose's part: the processor over the stream's records, objects per arrival hour; (first, last) ms."""
    handler = processor().handler
    boto3.client("s3").create_bucket(Bucket=bucket)
    records = stream_records(stream)
    records += records[:twice]  # Firehose retries deliver a record again now and then
    event = {"records": [
        {"recordId": str(i), "approximateArrivalTimestamp": int(r["ApproximateArrivalTimestamp"].timestamp() * 1000),
         "data": base64.b64encode(r["Data"]).decode(),
         "kinesisRecordMetadata": {"shardId": shard, "partitionKey": r["PartitionKey"], "sequenceNumber":
                                   r["SequenceNumber"], "subsequenceNumber": "",
                                   "approximateArrivalTimestamp": int(r["ApproximateArrivalTimestamp"].timestamp() * 1000)}}
        for i, (shard, r) in enumerate(records)
    ]}  # fmt: skip
    hours: dict[str, list[bytes]] = defaultdict(list)
    for source, out in zip(event["records"], handler(event, None)["records"], strict=True):
        assert (out["recordId"], out["result"]) == (source["recordId"], "Ok")
        at = source["approximateArrivalTimestamp"]
        (prefix,) = hour_prefixes(at, at + 1)
        hours[prefix].append(base64.b64decode(out["data"]))
    for n, (prefix, lines) in enumerate(sorted(hours.items())):
        key = f"{prefix}{stream}-raw-archive-{n}.gz"
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=gzip.compress(b"".join(lines)))
    arrivals = [r["approximateArrivalTimestamp"] for r in event["records"]]
    return min(arrivals), max(arrivals)


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()


def test_a_replay_of_the_archive_gives_the_stats_and_totals_of_the_live_consumer_and_is_idempotent(
    aws_stack: object,
    unique_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expected = fill_stream(unique_name, KEYS, shards=2, devices=8, duration_s=30)
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    live_env = run_config(unique_name, f"{unique_name}-live", keyring)
    live = prepare(live_env, fleet_catalog_for(8))
    assert start_worker(live_env | IDLE_EXIT, tmp_path / "live.log").wait(timeout=240) == 0
    live_totals = sum_totals(shard_totals(live))
    assert live_totals.accepted == expected.accepted

    first, last = archive(unique_name, f"{unique_name}-archive", twice=5)
    replay_env = run_config(unique_name, f"{unique_name}-replay", keyring)  # fresh tables: a new region, say
    replayed = prepare(replay_env, fleet_catalog_for(8))
    for key, value in replay_env.items():
        monkeypatch.setenv(key, value)
    argv = ["archive", "replay", "--from", iso(first), "--to", iso(last + 1), "--archive-bucket",
            f"{unique_name}-archive", "--app", "processing", "--output", "json"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert sum(s["records"] for s in summary["shards"].values()) == len(stream_records(unique_name))
    assert windows(live.stats.table) and windows(replayed.stats.table) == windows(live.stats.table)
    assert sum_totals(shard_totals(replayed)) == live_totals

    before = windows(replayed.stats.table)
    assert main(argv) == 0  # again: every effect is fenced by its position, nothing changes
    capsys.readouterr()
    assert windows(replayed.stats.table) == before
    assert sum_totals(shard_totals(replayed)) == live_totals


def test_a_time_range_the_wrong_way_round_exits_2_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["archive", "replay", "--from", "2026-01-02", "--to", "2026-01-01", "--archive-bucket", "b"]
    assert main(argv) == 2
    assert "--to" in capsys.readouterr().err
