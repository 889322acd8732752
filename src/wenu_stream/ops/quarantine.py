"""Quarantined readings: list them, and re-drive them once the catalog maps them.

Re-drive reads every quarantine object of the processing application, maps its
readings with the current catalog, hands the mapped ones to the processing
reading sinks (stats, warehouse staging) and flushes them, and only then
deletes the object (or rewrites it with what is still unmapped). Run it again
after a failure: it picks up where it stopped, and the sinks are idempotent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from wenu_stream.aws.quarantine import QuarantineDocument
from wenu_stream.catalog.directory import CatalogSnapshot
from wenu_stream.catalog.enrichment import enrich_unmapped
from wenu_stream.config import Config
from wenu_stream.ports import ReadingSink

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client

PREFIX = "quarantine/"


def quarantine_prefix(config: Config) -> str:
    return f"{PREFIX}{config.app}/{config.kinesis.stream}/"


async def iter_documents(s3: S3Client, config: Config) -> AsyncIterator[tuple[str, QuarantineDocument]]:
    """Every quarantine object (key, document) of ``config.app`` on its stream."""
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=config.sinks.bucket, Prefix=quarantine_prefix(config)):
        for obj in page.get("Contents", []):
            body = await (await s3.get_object(Bucket=config.sinks.bucket, Key=obj["Key"]))["Body"].read()
            yield obj["Key"], msgspec.json.decode(body, type=QuarantineDocument)


async def summarize(s3: S3Client, config: Config) -> list[dict[str, Any]]:
    """Quarantined readings counted by (device, channel, reason)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    async for _, doc in iter_documents(s3, config):
        counts.update((r.device, r.ch, str(r.reason)) for r in doc.readings)
    return [{"device": d, "ch": c, "reason": r, "readings": n} for (d, c, r), n in sorted(counts.items())]


async def redrive(
    s3: S3Client,
    config: Config,
    snapshot: CatalogSnapshot,
    sinks: Sequence[ReadingSink],
    *,
    dry_run: bool = False,
) -> dict[str, int]:
    """Re-drive what ``snapshot`` maps into ``sinks`` (the processing reading sinks, in flush order).

    Returns counts: objects, mapped, still unmapped.
    """
    done = Counter[str]()
    async for key, doc in iter_documents(s3, config):
        mapped, still = enrich_unmapped(doc.readings, snapshot)
        done["objects"] += 1
        done["mapped"] += len(mapped)
        done["still_unmapped"] += len(still)
        if dry_run or not mapped:
            continue
        for sink in sinks:
            await sink.write_readings(doc.shard_id, mapped)
            await sink.flush()
        if still:
            doc.readings = still
            await s3.put_object(Bucket=config.sinks.bucket, Key=key, Body=msgspec.json.encode(doc))
        else:
            await s3.delete_object(Bucket=config.sinks.bucket, Key=key)
    return dict(done)
