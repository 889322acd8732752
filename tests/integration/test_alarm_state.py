"""Alarm instance state survives a restart and a shard moving to another worker; stale writers are fenced."""

from __future__ import annotations

import boto3
import pytest

from tests.integration.alarm_support import MIN, T0, build_sink, clients, drain, provision, reading, subscribe
from wenu_stream.alarms.engine import transition_id
from wenu_stream.errors import StaleAlarmState

pytestmark = pytest.mark.integration


def stored(config, rule: str, series: str) -> dict:  # type: ignore[no-untyped-def]
    item = boto3.client("dynamodb").get_item(
        TableName=config.alarms.state_table, Key={"pk": {"S": f"{rule}#{series}"}}, ConsistentRead=True
    )
    return item["Item"]


@pytest.mark.slow
@pytest.mark.parametrize("second_shard", ["shardId-0", "shardId-7"], ids=["restart", "moved"])
async def test_a_pending_threshold_continues_on_the_next_owner(
    aws_stack: object, unique_name: str, second_shard: str
) -> None:
    config, topic = provision(unique_name)
    queue = subscribe(topic, unique_name)
    async with clients() as (ddb, sns):
        first = build_sink(config, topic, ddb, sns)
        await first.write_readings(
            "shardId-0", [reading("temp", T0 + MIN, 31), reading("temp", T0 + 2 * MIN, 32)]
        )
        await first.flush()
        item = stored(config, "hot", "temp")
        assert (item["state"]["S"], item["version"]["N"], item["severity"]["S"]) == (
            "pending",
            "2",
            "critical",
        )
        # the worker dies; the shard restarts here, or its series now arrive on another shard's worker
        second = build_sink(config, topic, ddb, sns)
        await second.write_readings(second_shard, [reading("temp", T0 + 3 * MIN, 33)])
        await second.flush()
    ((body, _),) = [m for m in drain(queue) if m[0]["rule"] == "hot"]
    assert (body["state"], body["at"], body["transition_id"]) == (
        "firing",
        T0 + 3 * MIN,
        transition_id("hot", "temp", T0 + MIN, "firing"),
    )
    item = stored(config, "hot", "temp")
    assert (item["state"]["S"], item["version"]["N"]) == ("firing", "3")
    assert item["last_transition"]["M"]["transition_id"]["S"] == body["transition_id"]


async def test_no_data_fires_on_wall_time_after_a_restart_of_an_idle_shard(
    aws_stack: object, unique_name: str
) -> None:
    config, topic = provision(unique_name)
    queue = subscribe(topic, unique_name)
    wall = 1_800_000_000_000
    async with clients() as (ddb, sns):
        first = build_sink(config, topic, ddb, sns, wall_ms=lambda: wall)
        await first.write_readings("shardId-0", [reading("power", T0 + i * MIN, 100 + i) for i in range(4)])
        await first.flush()
        second = build_sink(config, topic, ddb, sns)  # restarted; the shard gets no more readings
        assert (
            await second.idle("shardId-0", wall + 9 * MIN) == []
        )  # watermark +3+9 min: not yet silent 10 min
        (fired,) = await second.idle("shardId-0", wall + 11 * MIN)
        await second.flush()
    assert (fired.rule, fired.series, fired.at, fired.value) == ("silent", "power", T0 + 13 * MIN, 103.0)
    assert [b["transition_id"] for b, _ in drain(queue)] == [fired.transition_id]


@pytest.mark.slow
async def test_a_stale_owner_cannot_overwrite_a_newer_state(aws_stack: object, unique_name: str) -> None:
    config, topic = provision(unique_name)
    async with clients() as (ddb, sns):
        old = build_sink(config, topic, ddb, sns)
        await old.write_readings("shardId-0", [reading("volts", T0 + i * MIN, 230 + i) for i in range(3)])
        await old.flush()
        new = build_sink(config, topic, ddb, sns)  # the lease moved; the old worker does not know yet
        await new.write_readings("shardId-0", [reading("volts", T0 + i * MIN, 230 + i) for i in range(3, 5)])
        await new.flush()
        await old.write_readings("shardId-0", [reading("volts", T0 + 3 * MIN, 999)])
        with pytest.raises(StaleAlarmState, match=r"(frozen|silent)#volts is at version 5"):
            await old.flush()
    item = stored(config, "frozen", "volts")
    assert (item["version"]["N"], item["last_value"]["N"]) == ("5", "234.0")
