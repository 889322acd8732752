"""Dead letters in S3: one JSON object per rejected user record, at a deterministic key.

Key: ``<prefix><app>/<stream>/<reason>/<shard>/<sequence>-<sub>.json``. A replay
rewrites the same object, so the store never holds a record twice; the reason
in the key lets ``dlq list --reason`` read one prefix.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import Sequence
from typing import Any

import msgspec

from wenu_stream.aws.s3_put import FastS3Put
from wenu_stream.ingest.batch import DeadLetter
from wenu_stream.tasks import all_or_first_error


class DeadLetterDocument(msgspec.Struct, kw_only=True):
    """What a dead-letter object holds (JSON)."""

    app: str
    stream: str
    shard_id: str
    sequence_number: str
    sub_sequence_number: int
    partition_key: str
    reason: str
    detail: str
    arrival_time: str
    data_b64: str


def letter_key(prefix: str, app: str, stream: str, shard_id: str, letter: DeadLetter) -> str:
    """The object key of one dead letter."""
    pos = letter.position
    return f"{prefix}{app}/{stream}/{letter.reason}/{shard_id}/{pos.sequence:056d}-{pos.sub:05d}.json"


def to_document(app: str, stream: str, shard_id: str, letter: DeadLetter) -> DeadLetterDocument:
    arrival = dt.datetime.fromtimestamp(letter.arrival_ms / 1000, tz=dt.UTC).isoformat(
        timespec="milliseconds"
    )
    return DeadLetterDocument(
        app=app,
        stream=stream,
        shard_id=shard_id,
        sequence_number=str(letter.position.sequence),
        sub_sequence_number=letter.position.sub,
        partition_key=letter.partition_key,
        reason=letter.reason,
        detail=letter.detail,
        arrival_time=arrival,
        data_b64=base64.b64encode(letter.raw).decode(),
    )


class S3DeadLetterStore:
    """Writes dead letters to S3 through an open aiobotocore S3 client, or through ``fast`` when given.

    ``fast`` (a ``FastS3Put`` for ``bucket``) writes the same objects for a fraction of the CPU of the
    SDK's request pipeline; the runtime passes one.
    """

    def __init__(
        self,
        client: Any,
        *,
        bucket: str,
        prefix: str,
        app: str,
        stream: str,
        concurrency: int = 16,
        fast: FastS3Put | None = None,
    ) -> None:
        self._client = client
        self._fast = fast
        self._bucket = bucket
        self._prefix = prefix
        self._app = app
        self._stream = stream
        self._limit = asyncio.Semaphore(concurrency)

    async def put(self, shard_id: str, letters: Sequence[DeadLetter]) -> None:
        """Write every letter; returns when all are durable, raises if any failed (the others cancelled)."""
        await all_or_first_error(self._put_one(shard_id, letter) for letter in letters)

    async def _put_one(self, shard_id: str, letter: DeadLetter) -> None:
        body = msgspec.json.encode(to_document(self._app, self._stream, shard_id, letter))
        key = letter_key(self._prefix, self._app, self._stream, shard_id, letter)
        async with self._limit:
            if self._fast is not None:
                return await self._fast.put(key, body)
            await self._client.put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType="application/json"
            )
