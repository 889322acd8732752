"""Concurrent sink writes: results in order; a failure cancels and awaits the others before it is raised."""

from __future__ import annotations

import asyncio

import pytest

from wenu_stream.tasks import all_or_first_error


async def test_results_come_in_call_order() -> None:
    async def after(delay: float, value: int) -> int:
        await asyncio.sleep(delay)
        return value

    assert await all_or_first_error([after(0.03, 1), after(0.0, 2), after(0.01, 3)]) == [1, 2, 3]
    assert await all_or_first_error([]) == []


async def test_a_failure_leaves_no_write_running_and_is_raised_as_itself() -> None:
    finished: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            finished.append("slow")  # cancelled, and awaited before the error reaches the caller

    async def broken() -> None:
        await asyncio.sleep(0.01)
        raise ConnectionError("bucket gone")

    with pytest.raises(ConnectionError, match="bucket gone"):
        await all_or_first_error([slow(), broken(), slow()])
    assert finished == ["slow", "slow"]
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
