"""`dlq summary` and `dlq list` read the batched dead-letter objects, several at a time, in key order; a missing
object is a not-found (exit 4), not a configuration error."""

from __future__ import annotations

import json

import boto3
import pytest

from wenu_stream.aws.dead_letters import encode_lines, group_by_reason, object_key, to_document
from wenu_stream.cli.main import main
from wenu_stream.ingest.batch import DeadLetter
from wenu_stream.model import Position

pytestmark = pytest.mark.integration

REASONS = ("auth_failed", "unknown_key", "truncated")


@pytest.fixture
def letters(aws_stack: object, unique_name: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """45 letters in batches of 3 over two shards: 45 objects (one per shard, batch and reason); their keys."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=unique_name)
    keys = []
    for n in range(15):
        shard = f"shardId-00000000000{n % 2}"
        batch = [
            DeadLetter(position=Position(1000 + 10 * n + i), reason=REASONS[i], detail="x", raw=b"\x09" * (i + 1),
                       partition_key=f"dev-{n}", arrival_ms=1_764_300_000_000 + n * 1000)
            for i in range(3)
        ]  # fmt: skip
        docs = [to_document("processing", unique_name, shard, lt) for lt in batch]
        for reason, group in group_by_reason(docs).items():
            keys.append(object_key("dead-letter/", "processing", unique_name, reason, shard, group[0]))
            s3.put_object(Bucket=unique_name, Key=keys[-1], Body=encode_lines(group))
    monkeypatch.setenv("WENU_KINESIS_STREAM", unique_name)
    monkeypatch.setenv("WENU_SINKS_BUCKET", unique_name)
    return keys


@pytest.mark.slow
def test_summary_counts_each_reason(letters: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "summary", "-o", "json"]) == 0
    rows = {r["reason"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(REASONS)
    assert all((r["letters"], r["objects"], r["shards"]) == (15, 15, 2) for r in rows.values())
    assert rows["truncated"]["first_arrival"] == "2025-11-28T03:20:00.000+00:00"
    assert rows["truncated"]["last_arrival"] == "2025-11-28T03:20:14.000+00:00"
    assert main(["dlq", "summary"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "reason",
        "letters",
        "objects",
        "shards",
        "first",
        "arrival",
        "(UTC)",
        "last",
        "arrival",
        "(UTC)",
    ]


@pytest.mark.slow
def test_list_reads_every_letter_in_key_order_and_stops_early(
    letters: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "list", "-o", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["key"] for r in rows] == sorted(letters) and "data_b64" not in rows[0]
    assert main(["dlq", "list", "--reason", "unknown_key", "--limit", "2", "-o", "jsonl", "--with-data"]) == 0
    two = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["reason"] for r in two] == ["unknown_key"] * 2 and two[0]["data_b64"] == "CQk="


@pytest.mark.slow
def test_show_of_a_missing_object_is_not_found(
    letters: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "show", letters[0] + ".nope"]) == 4
    err = capsys.readouterr().err
    assert "not found: no dead-letter object" in err and "Fix:" in err and "configuration" not in err
    assert main(["dlq", "show", letters[0]]) == 0
    assert json.loads(capsys.readouterr().out)["key"] == letters[0]
