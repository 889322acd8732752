"""Query parameters and response shapes shared by the routes: times, pagination (pure apart from Litestar's errors)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from litestar.exceptions import ValidationException

from wenu_stream.errors import ConfigError
from wenu_stream.timeparse import EXAMPLES, parse_ms

MAX_LIMIT = 500


class Page(msgspec.Struct, kw_only=True):
    """One page of a list: ``next`` is the cursor of the following page (null: the last one)."""

    items: list[Any]
    next: str | None = None


def iso(ms: int | None, timezone: str = "UTC") -> str | None:
    """An ISO 8601 time with the offset of ``timezone`` (a site's zone; UTC by default)."""
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, ZoneInfo(timezone)).isoformat(timespec="milliseconds")


def parse_time(name: str, text: str | None, now_ms: int) -> int | None:
    """Epoch ms of a time query parameter, in the forms of ``wenu_stream.timeparse`` (400 otherwise).

    ISO 8601 with an offset, or without one taken as UTC (as the CLI takes it), ``now``, or a time
    relative to ``now_ms`` (``-24h``); a ``+`` in a query string may arrive as a space.
    """
    if text is None:
        return None
    value = text.strip()
    if "T" in value and " " in value:
        value = value.replace(" ", "+")
    try:
        return parse_ms(value, now_ms=now_ms, field=name)
    except ConfigError as exc:
        raise ValidationException(f"{name}: {text!r} is not a time; write e.g. {EXAMPLES}") from exc


def limit_of(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationException(f"limit: use 1..{MAX_LIMIT}")
    return limit


def offset_page(items: list[Any], cursor: str | None, limit: int) -> Page:
    """A page of an in-memory list, the cursor being the offset of the next item."""
    try:
        start = int(cursor or 0)
    except ValueError:
        raise ValidationException("cursor: not a cursor of this list") from None
    end = start + limit_of(limit)
    return Page(items=items[start:end], next=str(end) if end < len(items) else None)
