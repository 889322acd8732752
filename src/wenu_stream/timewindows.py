"""Window math, pure: ``15m`` and ``1h`` aligned to UTC, ``1d`` and ``1mo`` to the site's local calendar.

A local day starts at the first instant of its date, so a day with a DST
change lasts 23 or 25 hours (and where midnight falls in a spring-forward gap,
as in America/Santiago, the day starts at 01:00). Times are epoch ms.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

WIDTHS = ("15m", "1h", "1d", "1mo")
_UTC_WIDTHS = {"15m": 900_000, "1h": 3_600_000}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` of an IANA name (cached)."""
    return ZoneInfo(name)


def is_local(width: str) -> bool:
    """True for the widths aligned to the site's calendar (``1d``, ``1mo``)."""
    return width not in _UTC_WIDTHS


def window_of(t_ms: int, width: str, tz: str) -> tuple[int, int]:
    """Return ``(start_ms, end_ms)`` of the ``width`` window that contains ``t_ms``.

    Args:
        t_ms: measurement time, epoch ms.
        width: one of ``WIDTHS``.
        tz: IANA zone of the site (used by ``1d`` and ``1mo`` only).

    Raises:
        KeyError: unknown width.
    """
    size = _UTC_WIDTHS.get(width)
    if size is not None:
        start = t_ms - t_ms % size
        return start, start + size
    start, end = _cached_local_window(width, tz, t_ms - t_ms % _BUCKET)
    if start <= t_ms < end:
        return start, end
    return _local_window(t_ms, width, tz)  # a zone whose midnight is not on a quarter hour


_BUCKET = 900_000  # modern local midnights fall on UTC quarter hours: cache per quarter hour, then check


@lru_cache(maxsize=65_536)
def _cached_local_window(width: str, tz: str, bucket: int) -> tuple[int, int]:
    return _local_window(bucket, width, tz)


def _local_window(t_ms: int, width: str, tz: str) -> tuple[int, int]:
    day = to_datetime(t_ms, tz).date()
    if width == "1d":
        first, after = day, day + dt.timedelta(days=1)
    elif width == "1mo":
        first = day.replace(day=1)
        after = (first + dt.timedelta(days=31)).replace(day=1)
    else:
        raise KeyError(width)
    return local_midnight(first, tz), local_midnight(after, tz)


def windows_of(t_ms: int, tz: str) -> list[tuple[str, int]]:
    """The ``(width, start_ms)`` of every window containing ``t_ms``."""
    return [(width, window_of(t_ms, width, tz)[0]) for width in WIDTHS]


def local_midnight(day: dt.date, tz: str) -> int:
    """The first instant of ``day`` in ``tz``, epoch ms.

    ``fold=0`` maps a wall time inside a gap with the offset before the
    transition, which lands exactly on the transition when midnight is skipped.
    """
    local = dt.datetime(day.year, day.month, day.day, tzinfo=zone(tz))
    return to_ms(local)


def to_ms(moment: dt.datetime) -> int:
    """Epoch ms of an aware datetime, exactly (no float rounding)."""
    return (moment - _EPOCH) // dt.timedelta(milliseconds=1)


def to_datetime(t_ms: int, tz: str | None = None) -> dt.datetime:
    """The aware datetime of ``t_ms`` in ``tz`` (UTC if None)."""
    moment = _EPOCH + dt.timedelta(milliseconds=t_ms)
    return moment if tz is None else moment.astimezone(zone(tz))


def iso(t_ms: int, tz: str | None = None) -> str:
    """ISO 8601 with the offset of ``tz`` (``+00:00`` if None); milliseconds only when not zero."""
    moment = to_datetime(t_ms, tz)
    return moment.isoformat(timespec="milliseconds" if t_ms % 1000 else "seconds")


def window_iso(start_ms: int, end_ms: int, width: str, tz: str) -> tuple[str, str]:
    """Start and end of a window in ISO 8601: site offset for ``1d``/``1mo``, UTC for ``15m``/``1h``."""
    shown = tz if is_local(width) else None
    return iso(start_ms, shown), iso(end_ms, shown)


def add_months(t_ms: int, months: int) -> int:
    """``t_ms`` plus calendar months in UTC (the day clamped to the month's length), epoch ms."""
    moment = to_datetime(t_ms)
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    first = dt.date(year, month + 1, 1)
    last_day = ((first + dt.timedelta(days=31)).replace(day=1) - dt.timedelta(days=1)).day
    return to_ms(moment.replace(year=year, month=month + 1, day=min(moment.day, last_day)))
