"""The stats engine of one series: lateness, out-of-order counters, replay fences (pure).

State per series: the newest reading time (for lateness), the fence (the shard
and position of the last reading processed: a replay skips what it covers),
and, for counters, a buffer of the readings newer than ``newest - lateness``
plus the one just before them. A counter reading inserted between ``p`` and
``s`` adds ``increase(p, r)`` to its own windows and moves ``s``'s windows by
``increase(r, s) - increase(p, s)``, so every window always holds the sum over
consecutive pairs of the readings applied, whatever their arrival order.

Window aggregates are loaded by the caller (``needs`` says which, ``provide``
hands them over) before ``apply``; the engine marks what it changed ``dirty``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from enum import Enum

import msgspec

from wenu_stream.model import Position, SeriesReading
from wenu_stream.stats.aggregates import Point, WindowAgg, add_point, increase, to_micro
from wenu_stream.timewindows import WIDTHS, window_of, windows_of

WindowKey = tuple[str, int]  # (width, start_ms)


class Outcome(Enum):
    """What ``apply`` did with a reading."""

    APPLIED = "applied"
    LATE = "late"  # older than the series' newest minus the allowed lateness: counted, not applied
    REPLAYED = "replayed"  # covered by the fence: already applied before
    INVALID = "invalid"  # not a finite number: counted, not applied


class Fence(msgspec.Struct, frozen=True, array_like=True):
    """Shard, position and rebuild generation (``ingest.rebuild``) of the last reading processed."""

    shard: str
    sequence: int
    sub: int
    generation: int = 0

    @classmethod
    def at(cls, shard: str, position: Position, generation: int = 0) -> Fence:
        return cls(shard, position.sequence, position.sub, generation)

    def covers(self, shard: str, position: Position, generation: int = 0) -> bool:
        """True if a reading at ``position`` of ``shard`` was processed (another shard: a reshard, never covered).

        Generations order before positions: a reading of a newer generation than
        the fence's is never covered (a rebuild recomputes it); one of an older
        generation always is (a worker that missed the rebuild must not write).
        """
        if self.shard != shard:
            return False
        if self.generation != generation:
            return self.generation > generation
        return (position.sequence, position.sub) <= (self.sequence, self.sub)


class Entry(msgspec.Struct, frozen=True, array_like=True, order=True):
    """A counter reading kept for out-of-order inserts; ordered by (t, seq, index, device)."""

    t: int
    seq: int
    index: int
    device: str
    micro: int


class SeriesState(msgspec.Struct, kw_only=True):
    """What a series carries between readings (stored in its state item)."""

    series: str
    kind: str
    timezone: str
    newest: int | None = None
    fence: Fence | None = None
    buffer: list[Entry] = msgspec.field(default_factory=list)


def new_state(r: SeriesReading) -> SeriesState:
    """The state of a series never seen before."""
    return SeriesState(series=r.series, kind=r.kind, timezone=r.timezone)


class SeriesEngine:
    """Applies readings of one series to its window aggregates."""

    def __init__(self, state: SeriesState, lateness_ms: int) -> None:
        self.state = state
        self.lateness_ms = lateness_ms
        self.windows: dict[WindowKey, WindowAgg] = {}
        self.dirty: set[WindowKey] = set()

    @property
    def counter(self) -> bool:
        return self.state.kind == "counter"

    def is_late(self, t: int) -> bool:
        newest = self.state.newest
        return newest is not None and t < newest - self.lateness_ms

    def restart(self, generation: int) -> bool:
        """Start the series over if its fence is of an older rebuild generation; True if it did.

        What the series held (newest time, counter buffer, windows) was computed
        before the rebuild: the replay recomputes it, starting from empty windows.
        """
        fence = self.state.fence
        if fence is None or fence.generation >= generation:
            return False
        state = self.state
        self.state = SeriesState(series=state.series, kind=state.kind, timezone=state.timezone)
        self.windows.clear()
        self.dirty.clear()
        return True

    @property
    def generation(self) -> int:
        """The rebuild generation of the last reading processed (0: none, or never rebuilt)."""
        fence = self.state.fence
        return 0 if fence is None else fence.generation

    def needs(self, shard: str, readings: Iterable[SeriesReading], generation: int = 0) -> set[WindowKey]:
        """The windows ``apply`` may touch for these readings that are not loaded yet (a superset)."""
        keys: set[WindowKey] = set()
        fence, tz = self.state.fence, self.state.timezone
        for r in readings:
            if (fence is not None and fence.covers(shard, r.position, generation)) or self.is_late(r.t):
                continue
            keys.update(windows_of(r.t, tz))
            after = self._successor(_entry(r)) if self.counter else None
            if after is not None:
                keys.update(windows_of(after.t, tz))
        return {k for k in keys if k not in self.windows}

    def provide(self, found: Mapping[WindowKey, WindowAgg | None]) -> None:
        """Hand over loaded windows (None: not stored yet, starts empty)."""
        for key, agg in found.items():
            self.windows.setdefault(key, agg if agg is not None else WindowAgg())

    def apply(self, shard: str, r: SeriesReading, generation: int = 0) -> Outcome:
        """Apply one reading (in shard order) of the shard's rebuild ``generation``; its windows must be provided."""
        state = self.state
        if state.fence is not None and state.fence.covers(shard, r.position, generation):
            return Outcome.REPLAYED
        state.fence = Fence.at(shard, r.position, generation)
        if not math.isfinite(r.value):
            return Outcome.INVALID
        if self.is_late(r.t):
            return Outcome.LATE
        point = Point(r.t, r.seq, r.index, r.device, r.value)
        for key in windows_of(r.t, state.timezone):
            add_point(self._window(key), point)
        if self.counter:
            self._insert_counter(_entry(r))
        state.newest = r.t if state.newest is None else max(state.newest, r.t)
        self._evict()
        return Outcome.APPLIED

    def _insert_counter(self, entry: Entry) -> None:
        buffer = self.state.buffer
        i = bisect.bisect_left(buffer, entry)
        before = buffer[i - 1].micro if i else None
        own = increase(before, entry.micro)
        if own:
            self._add_consumption(entry.t, own)
        if i < len(buffer):
            after = buffer[i]
            delta = increase(entry.micro, after.micro) - increase(before, after.micro)
            if delta:
                self._add_consumption(after.t, delta)
        buffer.insert(i, entry)

    def _add_consumption(self, t: int, micro: int) -> None:
        for key in windows_of(t, self.state.timezone):
            self._window(key).consumption_micro += micro

    def _window(self, key: WindowKey) -> WindowAgg:
        self.dirty.add(key)
        return self.windows[key]  # KeyError: the caller did not load it (a bug: see ``needs``)

    def _successor(self, entry: Entry) -> Entry | None:
        buffer = self.state.buffer
        i = bisect.bisect_right(buffer, entry)
        return buffer[i] if i < len(buffer) else None

    def _evict(self) -> None:
        """Keep the readings at or after ``newest - lateness`` and the one just before them."""
        buffer, newest = self.state.buffer, self.state.newest
        if not buffer or newest is None:
            return
        i = _first_at_or_after(buffer, newest - self.lateness_ms)
        if i > 1:
            del buffer[: i - 1]

    def prune(self) -> None:
        """Forget clean windows that no future reading can touch (they end before ``newest - lateness``)."""
        newest = self.state.newest
        if newest is None:
            return
        cutoff = newest - self.lateness_ms
        tz = self.state.timezone
        for key in [k for k in self.windows if k not in self.dirty]:
            width, start = key
            if window_of(start, width, tz)[1] <= cutoff:
                del self.windows[key]


def _first_at_or_after(buffer: list[Entry], cutoff: int) -> int:
    lo, hi = 0, len(buffer)
    while lo < hi:
        mid = (lo + hi) // 2
        if buffer[mid].t < cutoff:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _entry(r: SeriesReading) -> Entry:
    return Entry(r.t, r.seq, r.index, r.device, to_micro(r.value))


__all__ = ["WIDTHS", "Entry", "Fence", "Outcome", "SeriesEngine", "SeriesState", "WindowKey", "new_state"]
