"""The one backoff: jittered exponential delays."""

from __future__ import annotations

import asyncio
import random

from wenu_stream.backoff import Backoff


def test_delays_grow_exponentially_under_the_cap_and_restart_after_a_reset() -> None:
    backoff = Backoff(base=0.1, cap=1.0, rng=random.Random(7))
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    delays = [backoff.next_delay() for _ in ceilings]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert backoff.failures == 6
    backoff.reset()
    assert backoff.failures == 0 and backoff.next_delay() <= 0.1


def test_many_backoffs_spread_out_instead_of_retrying_together() -> None:
    firsts = {round(Backoff(base=1.0, rng=random.Random(seed)).next_delay(), 6) for seed in range(50)}
    assert len(firsts) == 50


async def test_a_stop_ends_the_wait_early() -> None:
    stop = asyncio.Event()
    stop.set()
    assert await Backoff(base=100.0).wait(stop) is True
