"""Concurrent sink writes that never outlive their call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


async def all_or_first_error(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Await every call concurrently; results in call order.

    Unlike ``asyncio.gather``, a failure cancels the other calls and waits for
    them before it is raised (a ``TaskGroup``), so no request outlives the
    call: a retry, or a worker that stops and closes its clients, never races
    a leftover write. The first failure is raised as itself (callers retry on,
    or report, its type).
    """
    tasks: list[asyncio.Task[Any]] = []
    try:
        async with asyncio.TaskGroup() as group:
            for call in calls:
                tasks.append(group.create_task(_awaited(call)))
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


async def _awaited(call: Awaitable[T]) -> T:
    return await call


async def bounded(calls: Iterable[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Await every call with at most ``limit`` in flight; results in call order; the first error propagates."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return await all_or_first_error(one(c) for c in calls)
