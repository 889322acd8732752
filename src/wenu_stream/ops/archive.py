"""The raw archive read back: Firehose's ``raw/`` objects as Kinesis records, for ``archive replay``.

Firehose writes the stream to ``raw/year=YYYY/month=MM/day=DD/hour=HH/`` (UTC arrival hour, GZIP),
each record as one JSON line made by the archive's processor (deploy/cdk/wenu_cdk/archive_processor.py):
``{"shard", "seq", "sub", "pk", "at", "data"}``. :func:`archived_records` lists the hours a time range
touches, reads every object of those hours and returns the records that arrived in the range, per
shard in sequence order: the shape the pipeline expects, with the positions the records had, so a
replay's effects are fenced exactly like those of a live replay.
"""

from __future__ import annotations

import datetime as dt
import gzip
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgspec

from wenu_stream.errors import WenuError
from wenu_stream.model import KinesisRecord

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client

RAW = "raw/"
HOUR_MS = 3_600_000


class ArchivedLine(msgspec.Struct, frozen=True):
    """One line of the archive (the processor's output)."""

    shard: str
    seq: str
    pk: str
    at: int  # arrival at the stream, epoch ms
    data: bytes  # base64 in the line; msgspec decodes it
    sub: int = 0


class ArchiveError(WenuError):
    """An archive object that is not what the processor writes (named, with the line)."""


_LINE = msgspec.json.Decoder(ArchivedLine)


def hour_prefixes(start_ms: int, end_ms: int, prefix: str = RAW) -> list[str]:
    """The hour folders ``[start, end)`` touches (UTC), oldest first."""
    first = start_ms - start_ms % HOUR_MS
    out = []
    for hour in range(first, max(end_ms, first + 1), HOUR_MS):
        t = dt.datetime.fromtimestamp(hour / 1000, dt.UTC)
        out.append(f"{prefix}year={t:%Y}/month={t:%m}/day={t:%d}/hour={t:%H}/")
    return out


def parse_object(key: str, body: bytes) -> list[ArchivedLine]:
    """The lines of one archive object (GZIP or not: Firehose compresses, a test may not).

    Raises:
        ArchiveError: a line that is not one of the processor's.
    """
    text = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
    lines = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            lines.append(_LINE.decode(line))
        except msgspec.ValidationError as exc:
            raise ArchiveError(
                f"{key}, line {n}: not an archived record ({exc}); written by another processor?"
            ) from None
        except msgspec.DecodeError as exc:
            raise ArchiveError(
                f"{key}, line {n}: not JSON ({exc}); is this archive from before the processor?"
            ) from None
    return lines


def by_shard(lines: Iterable[ArchivedLine], start_ms: int, end_ms: int) -> dict[str, list[KinesisRecord]]:
    """Records that arrived in ``[start, end)``, per shard, in sequence order, each position once."""
    shards: dict[str, dict[tuple[int, int], KinesisRecord]] = defaultdict(dict)
    for line in lines:
        if start_ms <= line.at < end_ms:
            shards[line.shard][(int(line.seq), line.sub)] = KinesisRecord(
                sequence_number=line.seq,
                data=line.data,
                partition_key=line.pk,
                approximate_arrival_timestamp=line.at / 1000,
                sub_sequence_number=line.sub,
            )  # Firehose may deliver a record twice (retries): one position, one record
    return {shard: [records[k] for k in sorted(records)] for shard, records in sorted(shards.items())}


async def archived_records(
    s3: S3Client, bucket: str, start_ms: int, end_ms: int, prefix: str = RAW
) -> dict[str, list[KinesisRecord]]:
    """Read the archive objects of the hours of ``[start, end)`` and return their records per shard."""
    lines: list[ArchivedLine] = []
    for hour in hour_prefixes(start_ms, end_ms, prefix):
        async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=hour):
            for item in page.get("Contents", []):
                response = await s3.get_object(Bucket=bucket, Key=item["Key"])
                async with response["Body"] as stream:
                    lines.extend(parse_object(item["Key"], await stream.read()))
    return by_shard(lines, start_ms, end_ms)
