"""Company Stats in DynamoDB: the processing application's reading sink for windows (layout in ``stats.items``).

``write_readings`` applies readings in memory (series state loaded lazily,
then cached); ``flush`` commits every series touched since the last flush, each
in this order:

1. put the series-state item (state, fence, and the full aggregates of every
   window changed since the last commit as ``redo``), conditioned on the stored
   fence being the one this worker based its state on (compare-and-set);
2. put the changed window items, each conditioned on its stored fence being
   older (so a retry, a redo or a slower twin never goes backwards). A closed
   window (the series has a reading after its end) is put at the commit that
   closed it (again if a late reading changes it). With ``publish_s`` > 0 a window
   still open is put at most once per ``publish_s`` (counted from when the series
   was loaded); meanwhile it is in the state's ``redo``, durable, and the readers
   (``aws.readers``) take it from there. A typical live commit of a series is then
   one conditional write. Larger ``publish_s``: fewer writes; only a reader of the
   raw window items sees open windows that much behind.

A crash between 1 and 2 loses nothing: whoever loads the state next finds the
``redo`` windows and writes them again. A replay skips the readings the state's
fence covers, so each reading counts once. When step 1 finds another fence, the
cached state is stale (the shard moved away and back, or another worker took it
over): the series is reloaded and the readings processed since its last commit
are applied again on top, skipping what the stored fence covers.

Rebuild (``ingest.rebuild``): the processor hands each shard's generation to
``rebuild``. Fences carry the generation, and a series whose fence is of an
older generation than its shard's starts over at its next reading: empty
windows (stored ones of older generations are ignored), written over the old
items because a newer generation's fence sorts after every older one.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from wenu_stream.errors import SinkError, SinkRejected
from wenu_stream.model import Clock, SeriesReading
from wenu_stream.ports import SinkBase, StatsStore
from wenu_stream.stats import items
from wenu_stream.stats.engine import Outcome, SeriesEngine, WindowKey, new_state
from wenu_stream.stats.items import RedoEntry
from wenu_stream.tasks import all_or_first_error
from wenu_stream.timewindows import add_months, window_of

__all__ = ["StatsReport", "StatsSink"]

if TYPE_CHECKING:
    from wenu_stream.metrics import Metrics

Pending = tuple[str, SeriesReading]  # (shard, reading)


class StatsReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one ``write_readings`` did."""

    applied: int = 0
    late: int = 0  # older than the allowed lateness: counted, not applied (metric wenu_late_readings)
    replayed: int = 0  # covered by a fence: applied before a crash or a handoff
    invalid: int = 0  # not a finite value


class _Series:
    """A cached series: its engine, the fence stored in its state item, and what was processed since."""

    __slots__ = ("base", "engine", "pending", "published_at")

    def __init__(self, engine: SeriesEngine, base: str | None) -> None:
        self.engine = engine
        self.base = base
        self.pending: list[Pending] = []
        self.published_at: int | None = (
            None  # clock time its open windows were last written (or it was loaded)
        )

    @property
    def dirty(self) -> bool:
        return bool(self.engine.dirty) or items.fence_text(self.engine.state.fence) != self.base


class StatsSink(SinkBase):
    """Reading sink (``ports.ReadingSink``) of Company Stats, shared by a worker's shards."""

    name = "stats"

    def __init__(self, store: StatsStore, *, lateness_s: int = 3600, ttl_months: int = 13, clock: Clock,
                 metrics: Metrics | None = None, app: str = "processing", max_series: int = 100_000,
                 concurrency: int = 16, max_dirty_windows: int = 512, publish_s: float = 0.0) -> None:  # fmt: skip
        self._store = store
        self._lateness_ms = lateness_s * 1000
        self._ttl = ttl_months
        self._clock = clock
        self._metrics = metrics
        self._app = app
        self._max_series = max_series
        self._gate = asyncio.Semaphore(concurrency)
        self._max_dirty = max_dirty_windows
        self._publish_ms = int(publish_s * 1000)
        self._deferred: set[str] = set()  # series with open windows kept in their state item's redo only
        self._shard_of: dict[str, str] = {}  # series -> the shard its readings come from
        self._cache: OrderedDict[str, _Series] = OrderedDict()
        self._touched: set[str] = set()  # series changed since their last commit
        self._generations: dict[str, int] = {}  # shard -> its rebuild generation (ingest.rebuild)
        self._lock = asyncio.Lock()

    def rebuild(self, shard_id: str, generation: int) -> None:
        """Set a shard's rebuild generation: series last computed under an older one start over at their next reading."""
        self._generations[shard_id] = generation

    async def write_readings(self, shard_id: str, readings: Sequence[SeriesReading]) -> StatsReport:
        """Apply a batch of enriched readings (in shard order) in memory; return what happened to them."""
        groups: dict[str, list[Pending]] = {}
        for r in readings:
            refused = items.unstorable(r.value) if math.isfinite(r.value) else None
            if refused is not None:  # before any change: the processor isolates the record (ingest.failures)
                raise SinkRejected(self.name, f"{r.series} at {r.t}: {refused}")
            groups.setdefault(r.series, []).append((shard_id, r))
        async with self._lock:
            self._shard_of.update(dict.fromkeys(groups, shard_id))
            await self._load(groups)
            tally: Counter[Outcome] = Counter()
            for series, group in groups.items():
                entry = self._cache[series]
                self._cache.move_to_end(series)
                tally.update(self._apply(entry, group))
                self._touched.add(series)
                if len(entry.engine.dirty) > self._max_dirty:  # keep the redo of one commit small
                    await self._commit(series)
        report = StatsReport(applied=tally[Outcome.APPLIED], late=tally[Outcome.LATE],
                             replayed=tally[Outcome.REPLAYED], invalid=tally[Outcome.INVALID])  # fmt: skip
        if self._metrics is not None and report.late:
            self._metrics.late_readings.labels(self._app).inc(report.late)
        return report

    async def flush(self) -> None:
        """Commit every series changed since the last flush (module docstring, steps 1-2)."""
        async with self._lock:
            now = self._clock()
            due = {s for s in self._deferred if s in self._cache and self._publish_due(self._cache[s], now)}
            dirty = [s for s in self._touched | due if s in self._cache]
            await all_or_first_error(self._gated_commit(s) for s in dirty)
            self._touched.clear()
            self._shrink()

    async def settle(self, shard_id: str) -> None:
        """A shard stops here: write every window left in a state's redo only, so that after a clean stop the
        window items are complete.

        That is every deferred series cached here (whatever its shard), and every series whose state item a
        commit of ``shard_id`` left marked ``unpublished_shard`` (the store's sparse index): a worker that held
        the shard before and crashed never settled those, and this one may never have read them.
        """
        async with self._lock:
            marked = await self._store.unpublished(shard_id)
            await self._load_stored([s for s in marked if s not in self._cache], shard_id)
            deferred = [s for s in self._deferred | set(marked) if s in self._cache]
            clean = [
                s for s in marked if s in self._cache and not self._cache[s].dirty
            ]  # marked, all written
            for series in deferred:
                self._cache[series].published_at = None  # due now
            await all_or_first_error(self._gated_commit(s) for s in deferred)
            await all_or_first_error(self._unmark(s) for s in clean)

    async def _load_stored(self, series: list[str], shard_id: str) -> None:
        """Cache stored series states (no readings to apply) with the redo windows their items do not hold yet."""
        stored = await self._store.get_states(series) if series else {}
        redo: dict[str, list[RedoEntry]] = {}
        for name, item in stored.items():
            state, fence, redo[name] = items.decode_state(item)
            self._cache[name] = _Series(SeriesEngine(state, self._lateness_ms), fence)
            self._shard_of.setdefault(name, shard_id)
        await self._provide({}, redo)

    async def _unmark(self, series: str) -> None:
        """Rewrite a state item whose windows are all written, without its ``unpublished_shard`` mark."""
        entry = self._cache[series]
        expires = add_months(max(self._clock(), entry.engine.state.newest or 0), self._ttl) // 1000
        await self._store.put_state(items.state_item(entry.engine.state, [], expires), entry.base)

    def _apply(self, entry: _Series, group: Sequence[Pending]) -> list[Outcome]:
        outcomes = []
        for shard, r in group:
            outcome = entry.engine.apply(shard, r, self._generations.get(shard, 0))
            if outcome is not Outcome.REPLAYED:
                entry.pending.append((shard, r))
            outcomes.append(outcome)
        return outcomes

    async def _gated_commit(self, series: str) -> None:
        async with self._gate:
            await self._commit(series)

    async def _commit(self, series: str, attempts: int = 4) -> None:
        for _ in range(attempts):
            entry = self._cache[series]
            if not (entry.dirty or entry.pending):
                return  # committed by an earlier attempt of this flush
            engine = entry.engine
            fence = items.fence_text(engine.state.fence)
            keys = sorted(engine.dirty)
            redo = [RedoEntry(w, s, engine.windows[(w, s)]) for w, s in keys]
            now = self._clock()
            expires = add_months(max(now, engine.state.newest or 0), self._ttl) // 1000
            publish = keys if self._publish_due(entry, now) else [k for k in keys if self._closed(entry, k)]
            waiting = len(publish) < len(keys)  # open windows that stay in the redo only
            mark = self._shard_of.get(series) if waiting else None
            stored = await self._store.put_state(
                items.state_item(engine.state, redo, expires, mark), entry.base
            )
            if stored is None or stored == fence:  # written now, or by an earlier attempt that timed out
                entry.base = fence
                await self._put_windows(entry, publish, fence or "", now)
                if publish is keys:
                    entry.published_at = now
                if waiting:
                    self._deferred.add(series)
                else:
                    self._deferred.discard(series)
                return
            await self._reload(series)  # another fence is stored: our state is stale
        raise SinkError(
            f"stats of series {series!r} kept changing under this worker; "
            "another worker is processing its shard: stop and replay from the checkpoint"
        )

    def _publish_due(self, entry: _Series, now_ms: int) -> bool:
        return entry.published_at is None or now_ms - entry.published_at >= self._publish_ms

    @staticmethod
    def _closed(entry: _Series, key: WindowKey) -> bool:
        """True once the series has a reading after the window (it will rarely change again)."""
        width, start = key
        return window_of(start, width, entry.engine.state.timezone)[1] <= _newest(entry)

    async def _put_windows(self, entry: _Series, keys: list[WindowKey], fence: str, now_ms: int) -> None:
        engine = entry.engine
        live = [items.window_item(engine.state, k, engine.windows[k], fence, self._ttl) for k in keys]
        live = [
            i for i in live if int(i["expires_at"]["N"]) * 1000 > now_ms
        ]  # expired already: TTL would drop it
        written = await all_or_first_error(self._store.put_window(i) for i in live)
        if self._metrics is not None:
            self._metrics.stats_writes.labels(self._app).inc(1 + sum(written))
        engine.dirty.difference_update(keys)
        entry.pending.clear()
        engine.prune()

    async def _reload(self, series: str) -> None:
        """Reload a series whose stored fence moved under us, and apply again what we processed since our base."""
        pending = self._cache.pop(series).pending
        await self._load({series: pending})
        self._apply(self._cache[series], pending)

    async def _load(self, groups: dict[str, list[Pending]]) -> None:
        """Make ready what these readings touch: states of series not cached, and windows not in memory.

        Windows are only ever written after the state that covers them, so a
        window starting after the state's newest reading is not stored yet (if
        our state is stale, the commit finds out and reloads). A series last
        computed under an older rebuild generation than its shard's starts over
        (``SeriesEngine.restart``): its stored windows are not loaded.
        """
        unknown = [s for s in groups if s not in self._cache]
        stored = await self._store.get_states(unknown) if unknown else {}
        redo: dict[str, list[RedoEntry]] = {}
        for series in unknown:
            item = stored.get(series)
            if item is None:
                state, fence = new_state(groups[series][0][1]), None
            else:
                state, fence, redo[series] = items.decode_state(item)
            entry = self._cache[series] = _Series(SeriesEngine(state, self._lateness_ms), fence)
            entry.published_at = (
                self._clock()
            )  # open windows wait ``publish_s`` from now (closed ones do not)
        needed: dict[str, set[WindowKey]] = {}
        for series, group in groups.items():
            engine = self._cache[series].engine
            shards = {s: self._generations.get(s, 0) for s, _ in group}
            if shards and engine.restart(max(shards.values())):  # none: a reload with nothing to apply again
                redo.pop(series, None)  # computed before the rebuild, like the windows
            keys = needed[series] = set()
            for shard, generation in shards.items():
                keys |= engine.needs(shard, [r for s, r in group if s == shard], generation)
        await self._provide(needed, redo)

    async def _provide(self, needed: dict[str, set[WindowKey]], redo: dict[str, list[RedoEntry]]) -> None:
        wanted = {
            (series, w, start)
            for series, keys in needed.items()
            for w, start in keys
            if start <= _newest(self._cache[series])
        }
        wanted.update((series, e.width, e.start) for series, entries in redo.items() for e in entries)
        found: dict[tuple[str, str, int], tuple[Any, str]] = {}
        for item in await self._store.get_windows(sorted(wanted)) if wanted else ():
            series, (width, start), agg, fence = items.decode_window(item)
            found[(series, width, start)] = (agg, fence)
        for series, keys in needed.items():  # what is not stored, or predates a rebuild, starts empty
            engine = self._cache[series].engine
            engine.provide({k: _current(found.get((series, *k)), engine.generation) for k in keys})
        for series, entries in redo.items():
            entry = self._cache[series]
            for (
                e
            ) in entries:  # a window of the last commit that did not reach its item: take it from the redo
                if found.get((series, e.width, e.start), (None, ""))[1] != entry.base:
                    entry.engine.windows[(e.width, e.start)] = e.agg
                    entry.engine.dirty.add((e.width, e.start))

    def _shrink(self) -> None:
        """Forget the least recently used clean series beyond ``max_series``."""
        excess = len(self._cache) - self._max_series
        if excess <= 0:
            return
        for series in [s for s, e in self._cache.items() if not (e.dirty or e.pending)][:excess]:
            del self._cache[series]


def _current(found: tuple[Any, str] | None, generation: int) -> Any:
    """A stored window aggregate, unless it was computed under an older rebuild generation (then None: empty)."""
    if found is None or items.fence_generation(found[1]) < generation:
        return None
    return found[0]


def _newest(entry: _Series) -> int:
    newest = entry.engine.state.newest
    return -1 if newest is None else newest
