"""Duplicates are recognised by (device, seq), within a window, across a save and a resharding."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wenu_stream.ingest.dedup import Dedup, Seen


def test_a_repeat_is_a_duplicate_and_out_of_order_is_new() -> None:
    d = Dedup(window=8)
    assert [d.check("a", s) for s in (1, 3, 2, 3, 1)] == [
        Seen.NEW,
        Seen.NEW,
        Seen.NEW,
        Seen.DUPLICATE,
        Seen.DUPLICATE,
    ]
    assert d.check("b", 1) is Seen.NEW


def test_older_than_the_window_is_stale() -> None:
    d = Dedup(window=4)
    d.check("a", 10)
    assert d.check("a", 6) is Seen.STALE
    assert d.check("a", 7) is Seen.NEW


def test_state_survives_dump_and_load() -> None:
    d = Dedup(window=64)
    for s in range(0, 100, 3):
        d.check("dev", s)
    again = Dedup.load(d.dump(), 64)
    assert again.check("dev", 99) is Seen.DUPLICATE
    assert again.check("dev", 98) is Seen.NEW


def test_merged_parents_remember_both_sides() -> None:
    left, right = Dedup(16), Dedup(16)
    left.check("a", 5)
    right.check("a", 9)
    right.check("b", 1)
    child = Dedup.merged([left, right], 16)
    assert child.check("a", 5) is Seen.DUPLICATE
    assert child.check("a", 9) is Seen.DUPLICATE
    assert child.check("a", 7) is Seen.NEW
    assert child.check("b", 1) is Seen.DUPLICATE


@given(st.lists(st.integers(min_value=0, max_value=300), max_size=200))
def test_matches_a_plain_set_within_the_window(seqs: list[int]) -> None:
    d, seen, hi = Dedup(window=1024), set(), -1
    for s in seqs:
        expected = Seen.DUPLICATE if s in seen else Seen.NEW
        assert d.check("x", s) is expected
        seen.add(s)
        hi = max(hi, s)


def test_a_wide_window_survives_dump_and_load() -> None:
    d = Dedup(window=4096)
    for s in (1, 5000, 4000, 2000):
        d.check("dev", s)
    again = Dedup.load(d.dump(), 4096)
    assert [again.check("dev", s) for s in (5000, 4000, 2000, 1999, 1)] == [
        Seen.DUPLICATE,
        Seen.DUPLICATE,
        Seen.DUPLICATE,
        Seen.NEW,
        Seen.STALE,
    ]
    assert again.check("dev", 4500) is Seen.NEW
