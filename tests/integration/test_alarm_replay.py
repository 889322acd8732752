"""Crashes at any point of a flush, and SNS outages, neither lose nor repeat a notification.

The reference is the pure engine run once over the whole stream: what an
uncrashed worker publishes. A "crash" drops the sink (and its memory); a new
sink on the same tables replays the stream from the last checkpoint, as the
processor does after a restart.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
from structlog.testing import capture_logs

from tests.integration.alarm_support import (
    MIN,
    RULES,
    T0,
    build,
    clients,
    closed_port_url,
    drain,
    provision,
    reading,
    subscribe,
)
from wenu_stream.alarms.engine import notification
from wenu_stream.alarms.shard import AlarmEngine
from wenu_stream.errors import SinkError
from wenu_stream.model import SeriesReading

pytestmark = pytest.mark.integration

BATCH, EVERY = 6, 3  # readings per batch; a checkpoint every 3 batches
SHARD = "shardId-000000000001"


def stream(seed: int = 7) -> list[SeriesReading]:
    """About 140 readings of four acme series that keep every rule type busy, in shard order."""
    rng = random.Random(seed)
    out: list[SeriesReading] = []
    counter = 0.0
    for minute in range(36):
        t = T0 + minute * MIN
        out.append(reading("temp", t, rng.choice([20, 28, 31, 35])))
        if not 12 <= minute < 25:  # power goes silent for 13 minutes: no_data fires and resolves
            out.append(reading("power", t + 1, rng.choice([100, 110, 400])))
        out.append(reading("volts", t + 2, rng.choice([230, 230, 231])))
        counter = counter + rng.uniform(0, 12) if rng.random() > 0.05 else 0.0
        out.append(reading("water", t + 3, round(counter, 3), kind="counter"))
    return out


def batches(readings: list[SeriesReading]) -> list[list[SeriesReading]]:
    return [readings[i : i + BATCH] for i in range(0, len(readings), BATCH)]


def reference(readings: list[SeriesReading]) -> Counter[bytes]:
    """Bodies an uncrashed run publishes, one per transition."""
    found = AlarmEngine(RULES).apply(readings)
    return Counter(notification(tr)[0] for tr in found)


async def process(sink, parts, start: int, stop: int, *, flush_at_stop: bool = False) -> int:  # type: ignore[no-untyped-def]
    """Write batches ``start:stop``, flushing every EVERY batches; return the last checkpoint (a batch index)."""
    checkpoint = start
    for b in range(start, stop):
        await sink.write_readings(SHARD, parts[b])
        if (b + 1) % EVERY == 0:
            await sink.flush()
            checkpoint = b + 1
    if flush_at_stop:
        await sink.flush()  # ... and crash before the checkpoint is written
    return checkpoint


def published(queue: str) -> Counter[bytes]:
    import msgspec

    from wenu_stream.alarms.engine import Notification

    return Counter(msgspec.json.encode(msgspec.convert(body, Notification)) for body, _ in drain(queue))


@pytest.mark.slow
@pytest.mark.parametrize("crash", ["before_flush", "after_flush_before_checkpoint", "mid_flush", "twice"])
async def test_a_crash_and_replay_publish_exactly_the_uncrashed_notifications(
    aws_stack: object, unique_name: str, crash: str
) -> None:
    config, topic = provision(unique_name)
    queue = subscribe(topic, unique_name)
    parts = batches(stream())
    expected = reference([r for p in parts for r in p])
    assert sum(expected.values()) >= 12 and {b for b in expected if b"silent" in b}  # a busy stream
    async with clients() as (ddb, sns), clients(closed_port_url()) as (_, dead_sns):
        first, notifier = build(config, topic, ddb, sns, give_up_s=0)
        checkpoint = await process(first, parts, 0, 8, flush_at_stop=crash != "before_flush")
        if crash == "mid_flush":  # ledger and states written, SNS down: the flush fails, then the worker dies
            await first.write_readings(SHARD, parts[8])
            notifier.sns = dead_sns
            with pytest.raises(SinkError):
                await first.flush()
        if crash == "twice":
            second, _ = build(config, topic, ddb, sns)
            checkpoint = await process(second, parts, checkpoint, 17, flush_at_stop=True)
            checkpoint -= EVERY  # the checkpoint write was lost too: replay a longer overlap
        replayed, _ = build(config, topic, ddb, sns)
        await process(replayed, parts, checkpoint, len(parts), flush_at_stop=True)
    assert published(queue) == expected


@pytest.mark.slow
async def test_an_sns_outage_delays_notifications_and_loses_none(aws_stack: object, unique_name: str) -> None:
    config, topic = provision(unique_name)
    queue = subscribe(topic, unique_name)
    readings = stream()
    async with clients() as (ddb, sns), clients(closed_port_url()) as (_, dead_sns):
        sink, notifier = build(config, topic, ddb, dead_sns, give_up_s=600)
        await sink.write_readings(SHARD, readings)
        with capture_logs() as logs:
            flushing = asyncio.create_task(sink.flush())
            while sum(e["event"] == "notification_retry" for e in logs) < 3:
                await asyncio.sleep(0.05)
                assert not flushing.done()
            assert drain(queue) == []  # SNS is down: nothing yet, and flush has not returned
            notifier.sns = sns  # SNS is back
            await flushing
    assert published(queue) == reference(readings)


@pytest.mark.slow
async def test_a_worker_that_gave_up_on_sns_leaves_pending_notifications_for_the_next_owner(
    aws_stack: object, unique_name: str
) -> None:
    config, topic = provision(unique_name)
    queue = subscribe(topic, unique_name)
    readings = stream()
    async with clients() as (ddb, sns), clients(closed_port_url()) as (_, dead_sns):
        sink, _ = build(config, topic, ddb, dead_sns, give_up_s=0)
        await sink.write_readings(SHARD, readings)
        with pytest.raises(SinkError):
            await sink.flush()  # no checkpoint: the processor stops the shard
        assert drain(queue) == []
        restarted, _ = build(config, topic, ddb, sns)
        await restarted.write_readings(
            SHARD, readings
        )  # the next owner recovers the pending ones, then replays
        await restarted.flush()
    assert published(queue) == reference(readings)
