"""Reading the raw archive (ops.archive): hour folders, lines, per-shard order; a foreign object is named."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from wenu_stream.ops.archive import ArchiveError, by_shard, hour_prefixes, parse_object

H = 3_600_000
T = 1_764_370_800_000  # 2025-11-28T23:00:00Z


def line(shard: str, seq: str, at: int, data: bytes = b"x", sub: int = 0) -> bytes:
    fields = {
        "shard": shard,
        "seq": seq,
        "sub": sub,
        "pk": "d1",
        "at": at,
        "data": base64.b64encode(data).decode(),
    }
    return json.dumps(fields).encode() + b"\n"


def test_hour_prefixes_cover_the_range_across_midnight() -> None:
    assert hour_prefixes(T + 10, T + H + 1) == [
        "raw/year=2025/month=11/day=28/hour=23/",
        "raw/year=2025/month=11/day=29/hour=00/",
    ]
    assert hour_prefixes(T, T + H) == ["raw/year=2025/month=11/day=28/hour=23/"]  # the end is excluded


def test_lines_come_back_per_shard_in_sequence_order_once_each_within_the_range() -> None:
    body = gzip.compress(
        line("s-1", "30", T + 3) + line("s-0", "200", T + 2) + line("s-0", "100", T + 1, b"a")
        + line("s-0", "100", T + 1, b"a") + line("s-0", "9", T - 1) + line("s-1", "31", T + H)
    )  # fmt: skip
    shards = by_shard(parse_object("raw/k.gz", body), T, T + H)
    assert {s: [r.sequence_number for r in rs] for s, rs in shards.items()} == {
        "s-0": ["100", "200"],
        "s-1": ["30"],
    }
    assert shards["s-0"][0].data == b"a" and shards["s-0"][0].approximate_arrival_timestamp == (T + 1) / 1000


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"\x00\x01binary envelope\n", "raw/k, line 1: not JSON"),
        (b'{"shard": "s"}\n', "raw/k, line 1: not an archived"),
    ],
)
def test_an_object_the_processor_did_not_write_is_named_with_its_line(body: bytes, says: str) -> None:
    with pytest.raises(ArchiveError, match=says):
        parse_object("raw/k", body)
