"""Exponential backoff with full jitter: ``retry`` for durable writes, ``Backoff`` for loops that a stop ends early.

Many shards retrying together spread out instead of stampeding the service."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int = 6,
    base: float = 0.1,
    cap: float = 5.0,
    on_error: Callable[[BaseException, int], None] | None = None,
) -> T:
    """Await ``call()`` until it succeeds or ``attempts`` are spent; re-raise the last error.

    Sleeps ``uniform(0, min(cap, base * 2**n))`` between attempts (full jitter),
    so many shards retrying together do not stampede the service.
    """
    for attempt in range(attempts):
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if attempt == attempts - 1:
                raise
            if on_error is not None:
                on_error(exc, attempt)
            await asyncio.sleep(random.uniform(0, min(cap, base * 2**attempt)))
    raise AssertionError("unreachable")


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
