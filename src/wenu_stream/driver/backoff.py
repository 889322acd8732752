"""Exponential backoff with full jitter whose sleeps end early when the worker stops."""

from __future__ import annotations

import asyncio
import contextlib
import random


async def sleep_unless(event: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``event`` is set; return True if the event is set."""
    if event.is_set():
        return True
    if seconds <= 0:
        return False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


class Backoff:
    """Delays ``uniform(0, min(cap, base * 2**n))`` for the n-th consecutive failure (full jitter).

    Many shards retrying at once spread out instead of stampeding the service.
    ``reset()`` after a success.
    """

    def __init__(self, base: float = 0.1, cap: float = 10.0, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The delay before the next attempt; counts one more failure."""
        ceiling = min(self.cap, self.base * 2 ** min(self.failures, 30))
        self.failures += 1
        return self._rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.failures = 0

    async def wait(self, stop: asyncio.Event) -> bool:
        """Sleep the next delay unless ``stop`` is set first; return True if stopping."""
        return await sleep_unless(stop, self.next_delay())
