"""Warehouse staging: every accepted reading, as gzip CSV files in S3 that the loader COPYs into the warehouse.

``write_readings`` keeps rows in memory per shard; ``flush`` writes one object
per shard with what it holds, at a deterministic key:

    <prefix><app>/<stream>/<shard>/<first position>_<last position>_<digest>.csv.gz

where a position is ``<sequence, 56 digits>-<sub, 5 digits>`` and the digest
is over the file's CSV. A replay of the same records makes the same bytes
(gzip with no time stamp) and so rewrites the same object; a replay cut at
other boundaries makes other files whose rows overlap, and the loader's merge
skips keys already loaded. The digest keeps a loaded file from being silently
replaced by different rows at the same positions (a quarantine re-drive of
readings from a message whose other readings were staged before).

Files are never left overlapping by a crash: a file is written by a flush
that the checkpoint follows, so every file past a shard's checkpoint was
written by an owner that died (or lost its lease) before checkpointing it.
When the shard resumes (``resume``, with the checkpoint; a shard that had no
checkpoint yet hears it just before the first record its replay reads) those
files are deleted before anything is written: the replay stages the same readings
again, cut wherever its own flushes fall. The loader may have loaded such a
file in between; its rows are then loaded twice and the merge keeps one (the
PostgreSQL key, Redshift's ``NOT EXISTS`` + ``ROW_NUMBER``). A shard that is
released drops the rows it had not staged (they replay on its next owner).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from wenu_stream.log import get_logger
from wenu_stream.model import Position, SeriesReading
from wenu_stream.ports import SinkBase
from wenu_stream.tasks import all_or_first_error
from wenu_stream.warehouse.rows import encode_csv, to_row

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client


_MAX_SUB = 99_999  # sub-sequence numbers are written with 5 digits


def _position(p: Position) -> str:
    return f"{p.sequence:056d}-{p.sub:05d}"


def staged_key(
    prefix: str, app: str, stream: str, shard_id: str, first: Position, last: Position, csv: bytes
) -> str:
    """The object key of a staged file holding ``csv`` for positions ``first`` .. ``last`` of ``shard_id``."""
    digest = hashlib.sha256(csv).hexdigest()[:16]
    return f"{prefix}{app}/{stream}/{shard_id}/{_position(first)}_{_position(last)}_{digest}.csv.gz"


def build_file(
    prefix: str, app: str, stream: str, shard_id: str, readings: Sequence[SeriesReading]
) -> tuple[str, bytes]:
    """The key and gzip body of the staged file of ``readings`` (CPU-bound: run it off the event loop)."""
    csv = encode_csv(to_row(shard_id, r) for r in readings)
    positions = [r.position for r in readings]
    key = staged_key(prefix, app, stream, shard_id, min(positions), max(positions), csv)
    return key, gzip.compress(csv, compresslevel=6, mtime=0)


class S3StagingSink(SinkBase):
    """A reading sink (``sinks.enriched.ReadingSink``) that stages readings in S3 through an open aiobotocore client."""

    name = "staging"

    def __init__(self, client: S3Client, *, bucket: str, prefix: str, app: str, stream: str) -> None:
        self._client, self._bucket, self._prefix = client, bucket, prefix
        self._app, self._stream = app, stream
        self._pending: dict[str, list[SeriesReading]] = {}
        self._log = get_logger("wenu.staging")

    def release(self, shard_id: str) -> None:
        """The shard starts or stops here: rows not staged yet replay on its next owner."""
        self._pending.pop(shard_id, None)

    async def resume(self, shard_id: str, after: Position) -> None:
        """Delete the files a previous owner staged past the checkpoint ``after`` (module docstring)."""
        folder = f"{self._prefix}{self._app}/{self._stream}/{shard_id}/"
        start = f"{folder}{_position(Position(after.sequence, min(after.sub, _MAX_SUB)))}_~"
        paginator = self._client.get_paginator("list_objects_v2")
        stale = [
            obj["Key"]
            async for page in paginator.paginate(Bucket=self._bucket, Prefix=folder, StartAfter=start)
            for obj in page.get("Contents", [])
        ]
        for key in stale:
            await self._client.delete_object(Bucket=self._bucket, Key=key)
        if stale:
            self._log.info("staged_files_superseded", shard_id=shard_id, files=len(stale), after=str(after))

    async def write_readings(self, shard_id: str, readings: Sequence[SeriesReading]) -> None:
        """Keep ``readings`` for the next flush (memory only)."""
        if readings:
            self._pending.setdefault(shard_id, []).extend(readings)

    async def flush(self) -> None:
        """Write one file per shard with pending readings; returns when all are durable.

        On failure the readings stay pending (and the caller does not checkpoint).
        """
        pending, self._pending = self._pending, {}
        try:
            await all_or_first_error(self._put(shard, readings) for shard, readings in pending.items())
        except BaseException:
            for shard, readings in pending.items():
                self._pending[shard] = readings + self._pending.get(shard, [])
            raise

    async def _put(self, shard_id: str, readings: list[SeriesReading]) -> None:
        key, body = await asyncio.to_thread(
            build_file, self._prefix, self._app, self._stream, shard_id, readings
        )
        await self._client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/gzip")

    @property
    def pending_rows(self) -> int:
        """Readings held in memory, not yet staged."""
        return sum(len(r) for r in self._pending.values())
