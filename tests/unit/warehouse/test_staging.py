"""Staged file names: deterministic from the shard, the positions covered and the content."""

from __future__ import annotations

import gzip

from tests.support.warehouse import reading
from wenu_stream.model import Position
from wenu_stream.warehouse.rows import decode_csv
from wenu_stream.warehouse.staging import build_file

SHARD = "shardId-000000000002"


def batch(first: int, last: int) -> list:  # type: ignore[type-arg]
    return [reading(seq=n, position=Position(1000 + n, n % 3)) for n in range(first, last + 1)]


def test_same_readings_same_key_and_bytes() -> None:
    key, body = build_file("staging/", "processing", "readings", SHARD, batch(1, 10))
    again = build_file("staging/", "processing", "readings", SHARD, batch(1, 10))
    assert (key, body) == again
    assert key.startswith(f"staging/processing/readings/{SHARD}/{1001:056d}-00001_{1010:056d}-00001_")
    assert key.endswith(".csv.gz")
    rows = decode_csv(gzip.decompress(body))
    assert [r.seq for r in rows] == list(range(1, 11)) and {r.shard_id for r in rows} == {SHARD}


def test_other_boundaries_other_key() -> None:
    assert (
        build_file("s/", "a", "r", SHARD, batch(1, 10))[0]
        != build_file("s/", "a", "r", SHARD, batch(1, 12))[0]
    )


def test_other_rows_at_the_same_positions_get_another_key() -> None:
    one = build_file("s/", "a", "r", SHARD, [reading(ch="a")])[0]
    two = build_file("s/", "a", "r", SHARD, [reading(ch="b")])[0]
    assert one.rsplit("_", 1)[0] == two.rsplit("_", 1)[0] and one != two
