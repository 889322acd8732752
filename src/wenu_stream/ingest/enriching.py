"""Application sinks that work on enriched readings: one enrichment per batch, fanned out to reading sinks.

The processing application enriches once and hands the series readings to
stats and warehouse staging, and keeps unmapped readings in quarantine; the
alarms application hands them to the alarm engine. The catalog snapshot comes
from a read-through cache, refreshed off the event loop (it may query the
relational store).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from wenu_stream.catalog.directory import CatalogDirectory, CatalogSnapshot
from wenu_stream.catalog.enrichment import enrich
from wenu_stream.ingest.batch import BatchOutcome
from wenu_stream.metrics import Metrics
from wenu_stream.model import HashRange, Position, SeriesReading, Unmapped
from wenu_stream.ports import ReadingSink, SinkBase, UnmappedStore


def enrich_batch(
    outcome: BatchOutcome, snapshot: CatalogSnapshot
) -> tuple[list[SeriesReading], list[Unmapped]]:
    """Enrich every accepted message of a batch (pure)."""
    readings: list[SeriesReading] = []
    unmapped: list[Unmapped] = []
    for accepted in outcome.accepted:
        mapped, missing = enrich(accepted.message, accepted.position, snapshot, accepted.hash_partition_key)
        readings.extend(mapped)
        unmapped.extend(missing)
    return readings, unmapped


class EnrichingSink(SinkBase):
    """``ports.BatchSink`` that enriches a batch once and feeds every reading sink, quarantining the unmapped."""

    def __init__(
        self,
        name: str,
        directory: CatalogDirectory,
        sinks: Sequence[ReadingSink],
        *,
        quarantine: UnmappedStore | None,
        metrics: Metrics,
        app: str,
    ) -> None:
        self.name = name
        self._directory = directory
        self._sinks = tuple(sinks)
        self._quarantine = quarantine
        self._metrics = metrics
        self._app = app

    async def snapshot(self) -> CatalogSnapshot:
        snap = await asyncio.to_thread(self._directory.snapshot)
        self._metrics.catalog_age.labels(self._app).set(self._directory.age_s)
        return snap

    async def write(self, shard_id: str, outcome: BatchOutcome) -> None:
        if not outcome.accepted:
            return
        readings, unmapped = enrich_batch(outcome, await self.snapshot())
        for sink in self._sinks:
            await sink.write_readings(shard_id, readings)
        if unmapped and self._quarantine is not None:
            self._quarantine.add(shard_id, unmapped)
            self._metrics.quarantined.labels(self._app).inc(len(unmapped))

    async def flush(self) -> None:
        """Quarantine first, then each reading sink, in order. Each is idempotent, so a replay after a partial flush is safe."""
        if self._quarantine is not None:
            await self._quarantine.flush()
        for sink in self._sinks:
            await sink.flush()

    @property
    def has_pending(self) -> bool:
        """Some reading sink holds an effect that should not wait for the commit interval (an alarm notification)."""
        return any(sink.has_pending for sink in self._sinks)

    @property
    def waiting(self) -> bool:
        """Some reading sink waits on another process for an effect (``SinkBase.waiting``)."""
        return any(sink.waiting for sink in self._sinks)

    def release(self, shard_id: str) -> None:
        """A shard starts or stops here: sinks that cache per-shard state forget it (it reloads from their store)."""
        for sink in self._sinks:
            sink.release(shard_id)

    def rebuild(self, shard_id: str, generation: int) -> None:
        """Pass a shard's rebuild generation (``ingest.rebuild``) to the reading sinks that keep derived results."""
        for sink in self._sinks:
            sink.rebuild(shard_id, generation)

    async def idle(self, shard_id: str, now_ms: int) -> None:
        """Pass an idle tick (wall clock, epoch ms) to the sinks that keep time (alarms' no_data)."""
        for sink in self._sinks:
            await sink.idle(shard_id, now_ms)

    async def resume(self, shard_id: str, after: Position) -> None:
        """Pass the shard's checkpoint to the reading sinks (staging drops files a crashed owner left past it)."""
        for sink in self._sinks:
            await sink.resume(shard_id, after)

    async def inherit(self, shard_id: str, parents: Sequence[str], hash_range: HashRange | None) -> None:
        """Pass a child shard's lineage to the reading sinks (alarms take the parents' instances over)."""
        for sink in self._sinks:
            await sink.inherit(shard_id, parents, hash_range)

    async def settle(self, shard_id: str) -> None:
        """Pass a shard's stop to the reading sinks."""
        for sink in self._sinks:
            await sink.settle(shard_id)
