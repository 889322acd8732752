"""One parser for every time a command takes (pure: ``now`` is an argument).

Accepted, everywhere (``--from``, ``--to``, ``--since``, ``checkpoints reset --to timestamp``):

- ISO 8601 with an offset: ``2026-10-25T00:00:00+02:00``, ``2026-10-25T00:00Z``;
- ISO 8601 without an offset, **taken as UTC** (as the AWS CLI takes it; every time
  the commands print carries its offset): ``2026-10-25T00:00:00``, and a date alone
  ``2026-10-25`` (its midnight UTC). For a site's local midnight give the offset;
- ``now``;
- a duration relative to now: ``24h`` or ``-24h`` (24 hours ago, as in ``--since 24h``),
  ``+15m`` (in 15 minutes), ``now-2h``, compound ``1h30m``. Units: ``ms s m h d w``.
"""

from __future__ import annotations

import datetime as dt
import re

from wenu_stream.errors import ConfigError

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_RELATIVE = re.compile(r"^(?:now)?\s*([+-]?)\s*((?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+)(?:\s*ago)?$")
EXAMPLES = "2026-10-25T00:00:00+02:00, 2026-10-25 (UTC), now, 24h (ago), -2h, +15m"


def parse_moment(text: str, *, now: dt.datetime, field: str) -> dt.datetime:
    """An aware UTC datetime from any accepted form (module docstring).

    Args:
        text: What the user wrote.
        now: The current time, aware.
        field: The flag, for the message (``--from``).

    Raises:
        ConfigError: naming the flag, what is wrong and the forms accepted.
    """
    value = text.strip()
    if value.lower() == "now":
        return now.astimezone(dt.UTC)
    relative = _RELATIVE.match(value.lower())
    if relative is not None:
        sign, parts = relative.groups()
        ms = sum(float(n) * _UNITS_MS[unit] for n, unit in _PART.findall(parts))
        delta = dt.timedelta(milliseconds=ms)
        return (now + delta if sign == "+" else now - delta).astimezone(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(field, f"{text!r} is not a time", f"write it like one of: {EXAMPLES}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def parse_ms(text: str, *, now_ms: int, field: str) -> int:
    """Epoch milliseconds of any accepted form, ``now`` given in epoch ms."""
    now = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
    moment = parse_moment(text, now=now, field=field)
    return round(moment.timestamp() * 1000)


def parse_duration_ms(text: str, *, field: str) -> int:
    """Milliseconds of a duration such as ``90s``, ``15m``, ``1h30m``.

    Raises:
        ConfigError: not a duration.
    """
    value = text.strip().lower()
    if not value or _PART.sub("", value):
        raise ConfigError(field, f"{text!r} is not a duration", "write it like 90s, 15m, 1h30m or 2d")
    return round(sum(float(n) * _UNITS_MS[unit] for n, unit in _PART.findall(value)))
