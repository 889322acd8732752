"""Retry with exponential backoff and full jitter, for durable writes at the edge."""

from __future__ import annotations

import asyncio
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
