"""Window aggregates, exact and independent of arrival order (pure).

Sums and consumption are integer micro-units (``round(value * 1e6)``), divided
only on output: adding integers in any order gives the same result, adding
floats does not. ``min``/``max`` of floats and ``first``/``last`` by a total
order key are order independent as they are.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

MICRO = 1_000_000
GAUGE_FIELDS = ("count", "sum", "min", "max", "mean", "first", "last")
COUNTER_FIELDS = ("count", "first", "last", "consumption")


def to_micro(value: float) -> int:
    """A value in integer micro-units."""
    return round(value * MICRO)


def from_micro(micro: int) -> Decimal:
    """Micro-units back to an exact decimal."""
    return Decimal(micro).scaleb(-6)


class Point(msgspec.Struct, frozen=True, array_like=True, order=True):
    """A reading as ``first``/``last`` see it; field order is the tie order: time, device seq, index, device."""

    t: int
    seq: int
    index: int
    device: str
    value: float


class WindowAgg(msgspec.Struct, array_like=True, kw_only=True):
    """The full aggregate of one ``(series, window)``; mutable, owned by one series engine."""

    count: int = 0
    sum_micro: int = 0  # gauge
    min: float | None = None  # gauge
    max: float | None = None  # gauge
    consumption_micro: int = 0  # counter
    first: Point | None = None
    last: Point | None = None


def add_point(agg: WindowAgg, point: Point) -> None:
    """Count a reading in a window (gauge fields are kept for counters too; they are not shown)."""
    agg.count += 1
    agg.sum_micro += to_micro(point.value)
    agg.min = point.value if agg.min is None else min(agg.min, point.value)
    agg.max = point.value if agg.max is None else max(agg.max, point.value)
    if agg.first is None or point < agg.first:
        agg.first = point
    if agg.last is None or point > agg.last:
        agg.last = point


def increase(previous: int | None, current: int) -> int:
    """Counter increase in micro-units between consecutive readings: a drop is a restart from zero."""
    if previous is None:
        return 0  # the first reading ever seen of a series adds nothing
    return current - previous if current >= previous else current


def result(agg: WindowAgg, kind: str) -> dict[str, Any]:
    """The aggregates shown for a series of ``kind`` (``gauge`` or ``counter``), as exact decimals."""
    out: dict[str, Any] = {"count": agg.count}
    first = agg.first.value if agg.first else None
    last = agg.last.value if agg.last else None
    if kind == "counter":
        out.update(first=first, last=last, consumption=from_micro(agg.consumption_micro))
        return out
    mean = from_micro(agg.sum_micro) / agg.count if agg.count else None
    out.update(sum=from_micro(agg.sum_micro), min=agg.min, max=agg.max, mean=mean, first=first, last=last)
    return out
