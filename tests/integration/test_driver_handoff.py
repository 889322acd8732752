"""Graceful lease handoff (KCL 3.x style) on the native driver: the old owner flushes and hands its checkpoint over.

The processors coalesce (nothing is durable until ``flush``), so a shard taken
abruptly would replay everything since the last checkpoint on its new owner;
handed over, the new owner starts exactly where the old one stopped.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.aws import create_stream
from tests.support.driver import eventually, owners, put, settings, start
from tests.support.processors import Journal
from wenu_stream.drivers.native.leases import read_leases

pytestmark = pytest.mark.integration


async def test_a_stolen_lease_is_handed_over_flushed_and_checkpointed_without_replay(
    aws_stack: object, unique_name: str
) -> None:
    create_stream(unique_name, 2)
    before = put(unique_name, 40, 2)
    journal, stop = Journal(), asyncio.Event()
    first = start(settings(unique_name, "w1"), journal, stop, coalesce=True)  # durable only on flush
    await eventually(lambda: all(len(journal.seen(s)) == len(before[s]) for s in before))
    assert {x.checkpoint for x in read_leases(unique_name)} == {"TRIM_HORIZON"}  # nothing durable yet
    second = start(settings(unique_name, "w2"), journal, stop, coalesce=True)

    async def split() -> bool:
        return sorted(map(str, (await owners(unique_name)).values())) == ["w1", "w2"]

    await eventually(split)
    (moved,) = [s for s, o in (await owners(unique_name)).items() if o == "w2"]
    await eventually(
        lambda: any(w == "w2" and s == moved and e == "initialize" for w, s, (e, _) in journal.calls)
    )
    events = [(w, e, v) for w, s, (e, v) in journal.calls if s == moved]
    names = [x[:2] for x in events]
    handed = names.index(("w1", "close"))
    assert ("w1", "flush", before[moved][-1]) in events[:handed]  # flushed before it let go
    started = names.index(("w2", "initialize"))
    assert started > handed and events[started][2][0] == before[moved][-1]  # at the handed-over checkpoint
    after = put(unique_name, 20, 2)
    await eventually(lambda: all(len(journal.seen(s)) >= len(before[s]) + len(after[s]) for s in before))
    stop.set()
    results = await asyncio.gather(first, second)
    assert not any(r.failed for r in results)
    for shard in before:  # every record once: nothing replayed across the handoff
        assert journal.seen(shard) == before[shard] + after[shard]
    assert {x.lease_key: x.checkpoint_owner for x in read_leases(unique_name)} == dict.fromkeys(before)
