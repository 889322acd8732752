"""Shelves cover transitions by reading time: an end time, quiet hours in the site's zone (across midnight, DST)."""

from __future__ import annotations

import datetime as dt

import pytest

from wenu_stream.alarms.shelving import Shelf, covers, shelf_problems


def ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def test_until_covers_from_since_to_until_exclusive() -> None:
    shelf = Shelf(since=ms("2026-03-01T10:00:00+00:00"), until=ms("2026-03-01T12:00:00+00:00"))
    assert not covers(shelf, ms("2026-03-01T09:59:59+00:00"))  # before it was set: a replay is not held back
    assert covers(shelf, ms("2026-03-01T10:00:00+00:00")) and covers(shelf, ms("2026-03-01T11:59:59+00:00"))
    assert not covers(shelf, ms("2026-03-01T12:00:00+00:00"))


@pytest.mark.parametrize(("local", "held"), [
    ("2026-03-27T21:59:00+01:00", False), ("2026-03-27T22:00:00+01:00", True), ("2026-03-28T05:59:00+01:00", True),
    ("2026-03-28T06:00:00+01:00", False), ("2026-03-29T03:30:00+02:00", True),  # after the spring-forward change
    ("2026-03-29T06:30:00+02:00", False),
])  # fmt: skip
def test_quiet_hours_across_midnight_in_the_sites_zone(local: str, held: bool) -> None:
    shelf = Shelf(since=0, quiet_start="22:00", quiet_end="06:00", timezone="Europe/Madrid")
    assert covers(shelf, ms(local)) is held


def test_quiet_hours_within_a_day_and_until_together() -> None:
    shelf = Shelf(since=0, until=ms("2026-03-02T00:00:00+00:00"), quiet_start="12:00", quiet_end="14:00")
    assert covers(shelf, ms("2026-03-01T13:00:00+00:00")) and not covers(
        shelf, ms("2026-03-01T15:00:00+00:00")
    )
    assert not covers(shelf, ms("2026-03-02T13:00:00+00:00"))  # past until


def test_shelf_problems_name_the_field() -> None:
    assert shelf_problems(Shelf(since=5)) == [
        "until: give an end time, or quiet hours (quiet_start and quiet_end)"
    ]
    assert shelf_problems(Shelf(since=5, until=5)) == ["until: must be later than now"]
    assert shelf_problems(Shelf(since=5, quiet_start="25:00", quiet_end="06:00")) == [
        "quiet_start: '25:00' is not a local time HH:MM"
    ]
    assert shelf_problems(Shelf(since=5, quiet_start="22:00")) == [
        "quiet_end: quiet hours need both quiet_start and quiet_end"
    ]
