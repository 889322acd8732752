"""One time parser for every command: ISO 8601 with or without an offset (UTC), now, and times relative to now."""

from __future__ import annotations

import datetime as dt

import pytest

from wenu_stream.errors import ConfigError
from wenu_stream.timeparse import parse_moment, parse_ms

NOW = dt.datetime(2026, 10, 25, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2026-10-25T00:00:00+02:00", dt.datetime(2026, 10, 24, 22, 0, tzinfo=dt.UTC)),
        ("2026-10-25T00:00:00Z", dt.datetime(2026, 10, 25, 0, 0, tzinfo=dt.UTC)),
        ("2026-10-25T00:00:00", dt.datetime(2026, 10, 25, 0, 0, tzinfo=dt.UTC)),  # no offset: UTC
        ("2026-10-25", dt.datetime(2026, 10, 25, 0, 0, tzinfo=dt.UTC)),  # a date: its midnight UTC
        ("2026-10-25 06:30", dt.datetime(2026, 10, 25, 6, 30, tzinfo=dt.UTC)),
        ("now", NOW),
        ("NOW", NOW),
        ("24h", NOW - dt.timedelta(hours=24)),  # --since 24h
        ("-2h", NOW - dt.timedelta(hours=2)),
        ("now-2h", NOW - dt.timedelta(hours=2)),
        ("+15m", NOW + dt.timedelta(minutes=15)),
        ("1h30m", NOW - dt.timedelta(minutes=90)),
        ("2d ago", NOW - dt.timedelta(days=2)),
        ("1w", NOW - dt.timedelta(weeks=1)),
        ("500ms", NOW - dt.timedelta(milliseconds=500)),
    ],
)
def test_every_form_gives_an_aware_utc_time(text: str, want: dt.datetime) -> None:
    got = parse_moment(text, now=NOW, field="--from")
    assert got == want and got.tzinfo is dt.UTC


@pytest.mark.parametrize("text", ["", "yesterday", "2h later", "10", "2026-13-01", "-h"])
def test_anything_else_names_the_flag_and_the_forms(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_moment(text, now=NOW, field="--since")
    assert info.value.field == "--since" and "24h" in info.value.fix


def test_epoch_ms_round_trip() -> None:
    now_ms = int(NOW.timestamp() * 1000)
    assert parse_ms("-1s", now_ms=now_ms, field="f") == now_ms - 1000
    assert parse_ms("2026-10-25T12:00:00.250Z", now_ms=now_ms, field="f") == now_ms + 250
