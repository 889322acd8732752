"""Shelving of an alarm instance: when its notifications are held back (pure).

A shelf covers a transition by the transition's *reading time* ``at``, not by
the wall clock when it is published, so a replay decides the same way and a
late batch is judged by when things happened:

- ``until``: covers transitions with ``since <= at < until``;
- quiet hours: covers transitions whose local time of day in the site's zone
  is within ``[quiet_start, quiet_end)`` (wrapping midnight when start > end),
  from ``since`` on, and until ``until`` when both are given.

A covered transition is recorded in the ledger as ``shelved`` (visible in the
history) and not published; anything else is published as usual.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import msgspec

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class Shelf(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """How an instance is shelved (kept on its alarm state item)."""

    since: int  # epoch ms: transitions before this are not covered
    until: int | None = None  # epoch ms, exclusive
    quiet_start: str | None = None  # "HH:MM" local time in ``timezone``
    quiet_end: str | None = None
    timezone: str = "UTC"
    by: str = ""
    comment: str = ""


def shelf_problems(shelf: Shelf) -> list[str]:
    """What is wrong with a shelf (``field: message``), empty when sound."""
    problems = []
    quiet = (shelf.quiet_start, shelf.quiet_end)
    if shelf.until is None and quiet == (None, None):
        problems.append("until: give an end time, or quiet hours (quiet_start and quiet_end)")
    if shelf.until is not None and shelf.until <= shelf.since:
        problems.append("until: must be later than now")
    if (quiet[0] is None) != (quiet[1] is None):
        problems.append("quiet_end: quiet hours need both quiet_start and quiet_end")
    for name, value in (("quiet_start", quiet[0]), ("quiet_end", quiet[1])):
        if value is not None and not _HHMM.match(value):
            problems.append(f"{name}: {value!r} is not a local time HH:MM")
    return problems


def covers(shelf: Shelf, at: int) -> bool:
    """Say whether the shelf holds back a transition whose reading time is ``at`` (epoch ms)."""
    if at < shelf.since or (shelf.until is not None and at >= shelf.until):
        return False
    if shelf.quiet_start is None or shelf.quiet_end is None:
        return True
    local = dt.datetime.fromtimestamp(at / 1000, ZoneInfo(shelf.timezone)).strftime("%H:%M")
    start, end = shelf.quiet_start, shelf.quiet_end
    return start <= local < end if start <= end else (local >= start or local < end)
