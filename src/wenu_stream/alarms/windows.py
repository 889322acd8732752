"""Window bounds for consumption rules (pure).

``15m`` and ``1h`` align to UTC; ``1d`` and ``1mo`` align to the site's local
time zone, so a day in a DST change lasts 23 or 25 hours. Bounds are epoch
milliseconds, ``start`` inclusive and ``end`` exclusive.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

_FIXED_MS = {"15m": 15 * 60_000, "1h": 3_600_000}


def window_bounds(window: str, t_ms: int, timezone: str) -> tuple[int, int]:
    """Return ``(start_ms, end_ms)`` of the ``window`` that contains ``t_ms``.

    Args:
        window: ``15m``, ``1h``, ``1d`` or ``1mo``.
        t_ms: a measurement time, epoch milliseconds.
        timezone: the site's IANA zone (used by ``1d`` and ``1mo`` only).

    Raises:
        ValueError: an unknown window name.
        zoneinfo.ZoneInfoNotFoundError: an unknown zone (catalog import refuses those).
    """
    size = _FIXED_MS.get(window)
    if size is not None:
        start = t_ms - t_ms % size
        return start, start + size
    tz = ZoneInfo(timezone)
    local = datetime.fromtimestamp(t_ms / 1000, tz)
    if window == "1d":
        first = local.date()
        following = first + timedelta(days=1)
    elif window == "1mo":
        first = local.date().replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown window {window!r}; use 15m, 1h, 1d or 1mo")
    return _local_midnight_ms(first.year, first.month, first.day, tz), _local_midnight_ms(
        following.year, following.month, following.day, tz
    )


def _local_midnight_ms(year: int, month: int, day: int, tz: ZoneInfo) -> int:
    # Where midnight does not exist (America/Santiago springs forward at 24:00),
    # fold=0 reads it with the offset before the gap, which lands exactly on the
    # instant of the change: the first instant of that local day.
    return int(datetime(year, month, day, tzinfo=tz).timestamp() * 1000)
