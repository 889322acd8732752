"""A shard's lease stolen while its old owner is mid-flush: the two owners never both publish a transition.

The old owner (A) publishes through a slow SNS (a latency proxy in front of
moto) when the new owner (B) loads the shard, recovers what A left pending and
replays the batch from the checkpoint. Then A's flush is cancelled, as the
native driver cancels a consumer whose lease was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from tests.integration.alarm_support import build, clients, provision, subscribe
from tests.integration.test_alarm_replay import SHARD, published, reference, stream
from tests.support.fault_proxy import fault_proxy
from wenu_stream.alarms.sink import AlarmsSink
from wenu_stream.errors import StaleAlarmState

pytestmark = pytest.mark.integration


def pending(config: object) -> int:
    table = config.alarms.transitions_table  # type: ignore[attr-defined]
    items = boto3.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    return sum(i["status"]["S"] == "pending" for i in items)


async def new_owner(config: Any, topic: str, ddb: Any, sns: Any, readings: list[Any]) -> AlarmsSink:
    """B loads the shard (recover) and replays the batch from the checkpoint; restarted while A was ahead."""
    while True:
        b, _ = build(config, topic, ddb, sns)
        await b.write_readings(SHARD, readings)
        try:
            await b.flush()
        except StaleAlarmState:
            continue
        return b


@pytest.mark.slow
async def test_a_lease_stolen_mid_flush_publishes_each_transition_once(
    aws_stack: object, unique_name: str
) -> None:
    config, topic = provision(unique_name)
    queue = subscribe(topic, unique_name)
    readings = stream()
    moto = urlsplit(os.environ["AWS_ENDPOINT_URL"])
    with fault_proxy(moto.hostname or "127.0.0.1", moto.port or 80) as slow:
        slow.delay(0.4)
        async with clients() as (ddb, sns), clients(slow.url) as (_, slow_sns):
            a, _ = build(config, topic, ddb, slow_sns)
            await a.write_readings(SHARD, readings)
            flushing = asyncio.create_task(a.flush())
            while pending(config) == 0:  # noqa: ASYNC110 - A recorded the ledger and is publishing, slowly
                await asyncio.sleep(0.05)
            b = await new_owner(config, topic, ddb, sns, readings)
            flushing.cancel()  # A's renewer found the lease gone
            with contextlib.suppress(asyncio.CancelledError, StaleAlarmState):  # A is the stale one
                await flushing
            for _ in range(200):  # B offers what A held again until A marked it or its claim expired
                if not b.has_pending and pending(config) == 0:
                    break
                await asyncio.sleep(0.1)
                try:
                    await b.flush()
                except StaleAlarmState:  # A stored newer states meanwhile: B's shard stops and replays
                    b = await new_owner(config, topic, ddb, sns, readings)
    assert pending(config) == 0
    assert published(queue) == reference(readings)
