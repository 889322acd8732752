"""Query parameters and response shapes shared by the routes: times, pagination (pure apart from Litestar's errors)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from litestar.exceptions import ValidationException

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


def parse_time(name: str, text: str | None) -> int | None:
    """Epoch ms of an ISO 8601 query parameter that carries an offset (400 otherwise)."""
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(
            text.replace(" ", "+")
        )  # a '+' in a query string may arrive as a space
    except ValueError:
        raise ValidationException(
            f"{name}: {text!r} is not an ISO 8601 time; write e.g. 2026-10-25T00:00:00+02:00"
        ) from None
    if moment.tzinfo is None:
        raise ValidationException(f"{name}: {text!r} has no UTC offset; add one, e.g. +02:00 or Z")
    return int(moment.timestamp() * 1000)


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
