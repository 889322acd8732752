"""Quarantine: readings the catalog does not map, kept in S3 until the catalog maps them.

One JSON object per message position with its unmapped readings, at
``<prefix><app>/<stream>/<shard>/<sequence>-<sub>.json``: a replay rewrites the
same object. ``wenu-stream quarantine redrive`` processes them once the catalog
maps them and deletes what it processed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from wenu_stream.model import Unmapped
from wenu_stream.tasks import all_or_first_error

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client


class QuarantineDocument(msgspec.Struct, kw_only=True):
    """What a quarantine object holds."""

    app: str
    stream: str
    shard_id: str
    sequence_number: str
    sub_sequence_number: int
    readings: list[Unmapped]


def quarantine_key(prefix: str, app: str, stream: str, shard_id: str, reading: Unmapped) -> str:
    pos = reading.position
    return f"{prefix}{app}/{stream}/{shard_id}/{pos.sequence:056d}-{pos.sub:05d}.json"


class S3Quarantine:
    """Buffers unmapped readings per message; ``flush`` writes one object per message."""

    name = "quarantine"

    def __init__(
        self, client: S3Client, *, bucket: str, prefix: str, app: str, stream: str, concurrency: int = 16
    ) -> None:
        self._client, self._bucket, self._prefix = client, bucket, prefix
        self._app, self._stream = app, stream
        self._pending: dict[str, QuarantineDocument] = {}
        self._limit = asyncio.Semaphore(concurrency)

    def add(self, shard_id: str, readings: Sequence[Unmapped]) -> None:
        """Keep ``readings`` for the next flush (memory only)."""
        for reading in readings:
            key = quarantine_key(self._prefix, self._app, self._stream, shard_id, reading)
            doc = self._pending.get(key)
            if doc is None:
                doc = self._pending[key] = QuarantineDocument(
                    app=self._app,
                    stream=self._stream,
                    shard_id=shard_id,
                    sequence_number=str(reading.position.sequence),
                    sub_sequence_number=reading.position.sub,
                    readings=[],
                )
            doc.readings.append(reading)

    async def flush(self) -> None:
        """Write every pending object; returns when all are durable."""
        pending, self._pending = self._pending, {}
        try:
            await all_or_first_error(self._put(key, doc) for key, doc in pending.items())
        except BaseException:
            self._pending = pending | self._pending
            raise

    async def _put(self, key: str, doc: QuarantineDocument) -> None:
        async with self._limit:
            await self._client.put_object(
                Bucket=self._bucket, Key=key, Body=msgspec.json.encode(doc), ContentType="application/json"
            )
