"""Duplicates are recognised by (device, seq) within time-ordered epochs; a reset or a stray seq never drops new data."""

from __future__ import annotations

import random
import zlib

import msgspec
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from wenu_stream.ingest.dedup import Dedup, Seen

N, D, S = Seen.NEW, Seen.DUPLICATE, Seen.STALE


def run(d: Dedup, messages: list[tuple[int, int]], device: str = "a") -> list[Seen]:
    return [d.check(device, seq, at) for seq, at in messages]


def test_a_repeat_is_a_duplicate_and_out_of_order_is_new() -> None:
    d = Dedup(window=8)
    assert run(d, [(1, 10), (3, 30), (2, 20), (3, 30), (1, 10)]) == [N, N, N, D, D]
    assert d.check("b", 1, 10) is N


def test_older_than_the_window_of_its_epoch_is_stale() -> None:
    d = Dedup(window=4)
    run(d, [(s, s * 10) for s in range(1, 11)])
    assert d.check("a", 6, 60) is S  # sent inside the epoch, below its window: cannot be told from a replay
    assert d.check("a", 7, 70) is D


def test_a_reboot_mid_stream_starts_an_epoch_and_nothing_new_is_dropped() -> None:
    d = Dedup(window=4096)
    before = [(s, 1000 + s) for s in range(5000, 6001)]
    after = [(s, 10_000 + s) for s in range(1, 501)]  # the counter restarts at 1, the clock goes on
    assert set(run(d, before)) == {N}
    assert set(run(d, after)) == {N}
    assert set(run(d, before[-100:] + after[:100])) == {D}  # late repeats of either side
    assert set(run(d, [(s, 20_000 + s) for s in range(501, 7000)])) == {N}  # climbs past the old epoch's seqs


def test_a_stray_far_ahead_seq_first_middle_or_last_does_not_silence_the_device() -> None:
    stream = [(s, s) for s in range(1000, 1901)]
    stray = (999_999, 1500)  # a corrupted counter, sent at the time of seq 1500
    for where in (0, 450, len(stream)):
        d = Dedup(window=4096)
        arrival = [*stream[:where], stray, *stream[where:]]
        assert set(run(d, arrival)) == {N}, where
        assert set(run(d, [stray, *stream[::50]])) == {D}, where


def test_a_counter_wrap_is_a_new_epoch() -> None:
    top = 2**63 - 1
    d = Dedup(window=64)
    assert set(run(d, [(top - 5 + i, i) for i in range(6)] + [(i, 6 + i) for i in range(10)])) == {N}
    assert d.check("a", top, 5) is D and d.check("a", 3, 9) is D


def test_shuffled_arrival_within_the_window_is_exact() -> None:
    rng = random.Random(3)
    messages = [(s, 100 * s) for s in range(2000)] + [(s, 200_000 + 100 * s) for s in range(300)]  # a reboot
    arrival = sorted(messages + rng.sample(messages, 400), key=lambda m: m[1] + rng.randint(0, 3000))
    d, seen = Dedup(window=128), set()
    for m in arrival:
        assert d.check("a", *m) is (D if m in seen else N), m
        seen.add(m)


def test_state_survives_dump_and_load_mid_stream() -> None:
    d = Dedup(window=64)
    run(d, [(s, s) for s in range(0, 100, 3)] + [(1, 500), (2, 501)])  # and a reboot
    again = Dedup.load(d.dump(), 64)
    assert again.check("a", 99, 99) is D and again.check("a", 2, 501) is D
    assert again.check("a", 98, 98) is N and again.check("a", 3, 502) is N


def test_a_state_saved_before_epochs_loads_and_learns_send_times() -> None:
    legacy = zlib.compress(msgspec.msgpack.encode([64, {"a": [100, (0b101).to_bytes(1, "little")]}]), 1)
    d = Dedup.load(legacy, 64)
    assert d.check("a", 100, 7) is D and d.check("a", 98, 5) is D and d.check("a", 99, 6) is N
    assert d.check("a", 101, 1000) is N  # the first newer message gives the epoch its send time
    assert d.check("a", 1, 2000) is N  # so a later reboot is recognised


def test_merged_parents_remember_both_sides() -> None:
    left, right = Dedup(16), Dedup(16)
    left.check("a", 5, 50)
    right.check("a", 9, 90)
    right.check("b", 1, 10)
    child = Dedup.merged([left, right], 16)
    assert child.check("a", 5, 50) is D and child.check("a", 9, 90) is D and child.check("b", 1, 10) is D
    assert child.check("a", 7, 70) is N


def test_a_redriven_stale_message_is_accepted_once() -> None:
    d = Dedup(window=4)
    run(d, [(s, s) for s in range(1, 11)])
    assert d.check("a", 2, 2) is S
    assert d.force("a", 2, 2) is N
    assert d.force("a", 2, 2) is D and d.check("a", 2, 2) is D
    assert d.force("a", 10, 10) is D  # re-driving what was accepted counts nothing twice
    assert Dedup.load(d.dump(), 4).check("a", 2, 2) is D


def test_beyond_max_epochs_the_oldest_are_forgotten_and_what_they_held_is_stale() -> None:
    d = Dedup(window=16, max_epochs=2)
    for epoch in range(3):  # three reboots, each far apart
        run(d, [(s, epoch * 1000 + s) for s in range(1, 6)])
    assert d.check("a", 3, 3) is S  # the first epoch is forgotten: a repeat of it cannot be recognised
    assert d.check("a", 3, 2003) is D


@settings(max_examples=200, deadline=None)
@given(
    epochs=st.lists(
        st.tuples(st.integers(0, 300), st.integers(1, 30)), min_size=1, max_size=5
    ),  # (first seq, length), one after the other in time
    repeats=st.lists(st.integers(0, 10_000), max_size=40),
    seed=st.integers(0, 2**32),
)
def test_every_message_is_new_once_and_a_repeat_after_whatever_resets(
    epochs: list[tuple[int, int]], repeats: list[int], seed: int
) -> None:
    for i, (first_i, length_i) in enumerate(epochs):  # the one ambiguity the docstring owns up to, left out
        for first_j, length_j in epochs[i + 1 :]:
            hi_i = first_i + length_i - 1
            assume(first_j + length_j - 1 <= hi_i or first_j > hi_i + 32)
    rng, t, messages, epoch_of = random.Random(seed), 0, [], {}
    for k, (first, length) in enumerate(epochs):
        for seq in range(first, first + length):
            t += 1
            messages.append((seq, t))
            epoch_of[(seq, t)] = k
    arrival = sorted(
        messages, key=lambda m: (epoch_of[m], m[1] + rng.uniform(0, 20))
    )  # shuffled within epochs
    for i in repeats:  # a repeat comes any time after its first copy
        copy = messages[i % len(messages)]
        arrival.insert(rng.randint(arrival.index(copy) + 1, len(arrival)), copy)
    d, seen = Dedup(window=64), set()
    for m in arrival:
        assert d.check("x", *m) is (D if m in seen else N), (m, arrival)
        seen.add(m)
