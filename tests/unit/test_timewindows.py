"""Window bounds: UTC quarters and hours, local days and months across DST changes, TTL month arithmetic."""

from __future__ import annotations

import datetime as dt

import pytest

from wenu_stream.timewindows import add_months, iso, to_ms, window_iso, window_of

HOUR = 3_600_000


def ms(text: str) -> int:
    return to_ms(dt.datetime.fromisoformat(text))


@pytest.mark.parametrize(("t", "width", "start", "end"), [
    ("2026-10-25T01:59:59.999+00:00", "15m", "2026-10-25T01:45:00+00:00", "2026-10-25T02:00:00+00:00"),
    ("2026-10-25T02:00:00+00:00", "15m", "2026-10-25T02:00:00+00:00", "2026-10-25T02:15:00+00:00"),
    ("2026-10-25T02:30:00+01:00", "1h", "2026-10-25T01:00:00+00:00", "2026-10-25T02:00:00+00:00"),
])  # fmt: skip
def test_utc_windows(t: str, width: str, start: str, end: str) -> None:
    bounds = window_of(ms(t), width, "Europe/Madrid")
    assert window_iso(*bounds, width, "Europe/Madrid") == (start, end)


@pytest.mark.parametrize(("t", "tz", "start", "end", "hours"), [
    ("2026-10-25T12:00:00+01:00", "Europe/Madrid", "2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 25),
    ("2026-03-29T12:00:00+02:00", "Europe/Madrid", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 23),
    ("2026-09-06T12:00:00-03:00", "America/Santiago", "2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00", 23),
    ("2026-04-04T23:30:00-04:00", "America/Santiago", "2026-04-04T00:00:00-03:00", "2026-04-05T00:00:00-04:00", 25),
    ("2026-10-24T23:59:59+02:00", "Europe/Madrid", "2026-10-24T00:00:00+02:00", "2026-10-25T00:00:00+02:00", 24),
])  # fmt: skip
def test_local_days_last_23_24_or_25_hours(t: str, tz: str, start: str, end: str, hours: int) -> None:
    a, b = window_of(ms(t), "1d", tz)
    assert window_iso(a, b, "1d", tz) == (start, end)
    assert (b - a) == hours * HOUR


def test_local_month_and_its_neighbours_share_their_bounds() -> None:
    a, b = window_of(ms("2026-10-31T23:30:00+01:00"), "1mo", "Europe/Madrid")
    assert window_iso(a, b, "1mo", "Europe/Madrid") == (
        "2026-10-01T00:00:00+02:00",
        "2026-11-01T00:00:00+01:00",
    )
    assert window_of(b, "1mo", "Europe/Madrid")[0] == b
    assert window_of(a - 1, "1mo", "Europe/Madrid")[1] == a
    assert window_of(ms("2026-12-31T23:00:00Z"), "1mo", "UTC") == (
        ms("2026-12-01T00:00:00Z"),
        ms("2027-01-01T00:00:00Z"),
    )


def test_a_reading_on_the_boundary_opens_the_next_window() -> None:
    start, _end = window_of(ms("2026-09-06T04:00:00Z"), "1d", "America/Santiago")  # 01:00 -03, first instant
    assert start == ms("2026-09-06T04:00:00Z")
    assert window_of(start - 1, "1d", "America/Santiago")[1] == start


def test_add_months_clamps_the_day() -> None:
    assert iso(add_months(ms("2026-01-31T10:00:00Z"), 13)) == "2027-02-28T10:00:00+00:00"
    assert iso(add_months(ms("2026-11-30T00:00:00Z"), 1)) == "2026-12-30T00:00:00+00:00"


def test_iso_shows_milliseconds_only_when_there_are_some() -> None:
    assert iso(ms("2026-10-25T00:00:00.250Z"), "Europe/Madrid") == "2026-10-25T02:00:00.250+02:00"
    assert iso(0) == "1970-01-01T00:00:00+00:00"
