"""Dead letters in S3: one JSON-lines object per (shard, batch, reason). This module owns the layout and its reading.

Key: ``<prefix><app>/<stream>/<reason>/<shard>/<sequence>-<sub>.jsonl``, where
``<sequence>-<sub>`` (zero-padded, so keys sort in shard order) is the position of
the first letter of that reason in the batch. Each line is a
:class:`DeadLetterDocument`, in shard order. The reason in the key lets a reader
take one prefix (``dlq list --reason``).

Writing (:class:`S3DeadLetterStore`): one PutObject per reason in a batch, through
the SDK. A replay of the same batch writes the same objects again (the key is
deterministic), so a retry never adds a copy. A replay after a crash may batch the
records differently (a driver reads more at once after a restart); a letter can
then sit in two objects. Readers (:func:`iter_letters`) yield every position once,
so the store still reads as "every rejected record once".

Reading: :func:`iter_objects` (whole objects, in key order, for the re-drive that
rewrites them) and :func:`iter_letters` (letters, deduplicated, optionally by
arrival time, resumable after a :class:`Cursor`), for ``dlq``, the API and the report.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import msgspec

from wenu_stream.ingest.batch import DeadLetter
from wenu_stream.tasks import all_or_first_error

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client as SyncS3Client
    from mypy_boto3_s3.type_defs import ListObjectsV2RequestPaginateTypeDef
    from types_aiobotocore_s3.client import S3Client

SUFFIX = ".jsonl"


class DeadLetterDocument(msgspec.Struct, kw_only=True):
    """One line of a dead-letter object (JSON)."""

    app: str
    stream: str
    shard_id: str
    sequence_number: str
    sub_sequence_number: int
    partition_key: str
    reason: str
    detail: str
    arrival_time: str  # ISO 8601, UTC, milliseconds
    data_b64: str

    @property
    def position(self) -> tuple[str, int, int]:
        """Where the record sits: (shard, sequence, sub-sequence); a letter's identity."""
        return self.shard_id, int(self.sequence_number), self.sub_sequence_number

    @property
    def raw(self) -> bytes:
        return base64.b64decode(self.data_b64)

    @property
    def arrival_ms(self) -> int:
        return int(dt.datetime.fromisoformat(self.arrival_time).timestamp() * 1000)


class LetterObject(msgspec.Struct, frozen=True):
    """One stored object: its key and its letters in shard order."""

    key: str
    letters: list[DeadLetterDocument]


class StoredLetter(msgspec.Struct, frozen=True):
    """A letter with the object it was read from and its line there (0-based)."""

    key: str
    line: int
    document: DeadLetterDocument


class Cursor(msgspec.Struct, frozen=True):
    """Where a listing stopped: after line ``line`` of object ``key``."""

    key: str
    line: int

    def encode(self) -> str:
        return f"{self.line}:{self.key}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises ValueError for text :meth:`encode` did not write."""
        line, sep, key = text.partition(":")
        if not sep or not line.isdigit() or not key.endswith(SUFFIX):
            raise ValueError("not a dead-letter cursor")
        return cls(key, int(line))


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(DeadLetterDocument)


def letter_prefix(prefix: str, app: str, stream: str, reason: str | None = None) -> str:
    """The key prefix of an application's dead letters (of one reason if given)."""
    return f"{prefix}{app}/{stream}/" + (f"{reason}/" if reason else "")


def object_key(
    prefix: str, app: str, stream: str, reason: str, shard_id: str, first: DeadLetterDocument
) -> str:
    """The key of the object of ``reason`` whose first letter is ``first``."""
    _, sequence, sub = first.position
    return f"{letter_prefix(prefix, app, stream, reason)}{shard_id}/{sequence:056d}-{sub:05d}{SUFFIX}"


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


def encode_lines(letters: Sequence[DeadLetterDocument]) -> bytes:
    """The body of an object: one JSON document per line, in shard order."""
    ordered = sorted(letters, key=lambda d: d.position)
    return b"".join(_ENCODER.encode(d) + b"\n" for d in ordered)


def decode_lines(body: bytes) -> list[DeadLetterDocument]:
    return [_DECODER.decode(line) for line in body.splitlines() if line.strip()]


def group_by_reason(letters: Sequence[DeadLetterDocument]) -> dict[str, list[DeadLetterDocument]]:
    """Letters by reason code, each group in shard order."""
    groups: dict[str, list[DeadLetterDocument]] = {}
    for doc in sorted(letters, key=lambda d: d.position):
        groups.setdefault(doc.reason, []).append(doc)
    return groups


class S3DeadLetterStore:
    """``ports.DeadLetterStore`` on an open aiobotocore S3 client: one object per reason of a batch."""

    def __init__(self, client: S3Client, *, bucket: str, prefix: str, app: str, stream: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix
        self._app = app
        self._stream = stream
        self.puts = 0  # objects written (for benchmarks)

    async def put(self, shard_id: str, letters: Sequence[DeadLetter]) -> None:
        """Write a batch's letters; returns when every object is durable, raises if one failed."""
        docs = [to_document(self._app, self._stream, shard_id, letter) for letter in letters]
        groups = group_by_reason(docs)
        await all_or_first_error(
            self._put_object(shard_id, reason, group) for reason, group in groups.items()
        )

    async def _put_object(self, shard_id: str, reason: str, group: list[DeadLetterDocument]) -> None:
        key = object_key(self._prefix, self._app, self._stream, reason, shard_id, group[0])
        self.puts += 1
        await self._client.put_object(
            Bucket=self._bucket, Key=key, Body=encode_lines(group), ContentType="application/x-ndjson"
        )


def iter_objects(
    s3: SyncS3Client, bucket: str, prefix: str, *, start_after: str = "", workers: int = 16
) -> Iterator[LetterObject]:
    """Every dead-letter object under ``prefix`` (after key ``start_after``), in key order (a boto3 client).

    The objects of a listed page are fetched ``workers`` at a time (a boto3 client is thread-safe), so
    reading a thousand objects costs a few round trips of latency, not a thousand.
    """
    workers = max(1, workers)
    args: ListObjectsV2RequestPaginateTypeDef = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        args["StartAfter"] = start_after
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for page in s3.get_paginator("list_objects_v2").paginate(**args):
            keys = [obj["Key"] for obj in page.get("Contents", [])]
            for start in range(
                0, len(keys), workers
            ):  # a few in flight: a reader that stops early waits for few
                chunk = keys[start : start + workers]
                for key, letters in zip(
                    chunk, pool.map(lambda k: read_object(s3, bucket, k), chunk), strict=True
                ):
                    if letters is not None:
                        yield LetterObject(key, letters)


def read_object(s3: SyncS3Client, bucket: str, key: str) -> list[DeadLetterDocument] | None:
    """The letters of one object, or None if there is no such object."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return decode_lines(body)


def iter_letters(
    s3: SyncS3Client,
    bucket: str,
    prefix: str,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    after: Cursor | None = None,
) -> Iterator[StoredLetter]:
    """Every letter under ``prefix`` once (a position held by two objects is yielded from the first),
    in key and shard order, arrived in ``[since_ms, until_ms)`` if given, resuming after ``after``."""
    seen: set[tuple[str, int, int]] = set()

    def wanted(doc: DeadLetterDocument) -> bool:
        arrived = doc.arrival_ms
        return (since_ms is None or arrived >= since_ms) and (until_ms is None or arrived < until_ms)

    objects: Iterator[LetterObject] = iter_objects(s3, bucket, prefix, start_after=after.key if after else "")
    if after is not None and after.key.startswith(prefix):
        resumed = read_object(s3, bucket, after.key)
        if resumed is not None:
            objects = _chain(LetterObject(after.key, resumed), objects)
    for obj in objects:
        first = after.line + 1 if after is not None and obj.key == after.key else 0
        for line, doc in enumerate(obj.letters):
            if line < first or doc.position in seen or not wanted(doc):
                continue
            seen.add(doc.position)
            yield StoredLetter(obj.key, line, doc)


def count_by_reason(s3: SyncS3Client, bucket: str, prefix: str) -> dict[str, int]:
    """Letters under ``prefix`` counted by reason code (each stored position once)."""
    counts: dict[str, int] = {}
    for letter in iter_letters(s3, bucket, prefix):
        counts[letter.document.reason] = counts.get(letter.document.reason, 0) + 1
    return dict(sorted(counts.items()))


def _chain(head: LetterObject, rest: Iterator[LetterObject]) -> Iterator[LetterObject]:
    yield head
    yield from rest
