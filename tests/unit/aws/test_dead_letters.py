"""The dead-letter layout: keys in shard order, JSON lines, one group per reason, resumable cursors."""

from __future__ import annotations

import pytest

from wenu_stream.aws.dead_letters import (
    Cursor,
    DeadLetterDocument,
    decode_lines,
    encode_lines,
    group_by_reason,
    letter_prefix,
    object_key,
    to_document,
)
from wenu_stream.ingest.batch import DeadLetter
from wenu_stream.model import Position


def letter(seq: int, reason: str = "auth_failed", sub: int = 0) -> DeadLetter:
    return DeadLetter(
        position=Position(seq, sub), reason=reason, detail="d", raw=bytes([seq % 256]),
        partition_key="EM-1", arrival_ms=1_764_300_000_123,
    )  # fmt: skip


def docs(*letters: DeadLetter) -> list[DeadLetterDocument]:
    return [to_document("processing", "readings", "shardId-1", lt) for lt in letters]


def test_keys_sort_in_shard_order_under_their_reason() -> None:
    small, large = docs(letter(9), letter(10**20, sub=3))
    keys = [
        object_key("dl/", "processing", "readings", "auth_failed", "shardId-1", d) for d in (small, large)
    ]
    assert keys == sorted(keys)
    assert keys[1] == f"dl/processing/readings/auth_failed/shardId-1/{10**20:056d}-00003.jsonl"
    assert keys[0].startswith(letter_prefix("dl/", "processing", "readings", "auth_failed"))


def test_a_batch_is_one_group_per_reason_each_in_shard_order() -> None:
    groups = group_by_reason(docs(letter(12), letter(8, "truncated"), letter(7), letter(9)))
    assert {r: [d.sequence_number for d in g] for r, g in groups.items()} == {
        "auth_failed": ["7", "9", "12"],
        "truncated": ["8"],
    }


def test_lines_round_trip_in_shard_order() -> None:
    written = docs(letter(3, sub=1), letter(3), letter(2))
    body = encode_lines(written)
    assert body.count(b"\n") == 3
    read = decode_lines(body)
    assert [d.position for d in read] == [("shardId-1", 2, 0), ("shardId-1", 3, 0), ("shardId-1", 3, 1)]
    assert read[0].raw == bytes([2]) and read[0].arrival_ms == 1_764_300_000_123


def test_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    cursor = Cursor("dl/processing/readings/truncated/shardId-1/0007-00000.jsonl", 4)
    assert Cursor.decode(cursor.encode()) == cursor
    for foreign in ("", "4", "x:dl/a.jsonl", "4:dl/a.json"):
        with pytest.raises(ValueError, match="cursor"):
            Cursor.decode(foreign)
