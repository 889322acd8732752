"""The alarm journal: a live commit writes a few items per shard, not one per instance, and loses nothing.

Twenty series under four rules each, one reading a minute, a commit after every
minute: instance items are written only for new instances, state changes and
transitions; the rest goes to one journal item per commit, folded into a
snapshot every ``COMPACT_EVERY`` commits. A worker that loads the shard again
gets exactly the states of the one that wrote them, and a shard that stops
here leaves every instance on its own item.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import boto3
import pytest

from tests.integration.alarm_support import MIN, T0, build_sink, clients, provision, reading
from wenu_stream.alarms.rules import parse_rules
from wenu_stream.aws.alarm_journal import COMPACT_EVERY

pytestmark = pytest.mark.integration
SHARD = "shardId-000000000003"
RULES = parse_rules([
    {"type": "threshold", "id": "hot", "severity": "critical", "match": {}, "op": ">", "value": 95, "clear": 90,
     "for_s": 120},
    {"type": "rate_of_change", "id": "jump", "severity": "major", "match": {}, "max_abs_delta_per_min": 60},
    {"type": "stuck", "id": "frozen", "severity": "minor", "match": {}, "count": 4},
    {"type": "no_data", "id": "silent", "severity": "warning", "match": {}, "after_s": 600},
])  # fmt: skip


class Counting:
    """The real DynamoDB client, counting the writes per kind of item (instance, journal, snapshot, head)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client, self._table, self.writes = client, table, Counter[str]()

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)
        if name not in ("put_item", "update_item", "delete_item", "batch_write_item"):
            return call

        async def counted(**args: Any) -> Any:
            if args.get("TableName", self._table) == self._table:  # not the ledger's
                pk = (args.get("Item") or args.get("Key") or {"pk": {"S": "@batch"}})["pk"]["S"]
                self.writes[pk.split("#")[0] if pk.startswith("@") else "instance"] += 1
            return await call(**args)

        return counted


def minute(m: int, rng: random.Random) -> list[Any]:
    out = []
    for s in range(20):
        value = rng.choice([50, 50, 50, 99]) if s < 5 else 40 + rng.random()  # five series flip now and then
        out.append(reading(f"s{s:02d}", T0 + m * MIN + s, value))
    return out


@pytest.mark.slow
async def test_a_live_commit_writes_a_few_items_per_shard_and_a_reload_gets_the_same_states(
    aws_stack: object, unique_name: str
) -> None:
    config, topic = provision(unique_name)
    rng = random.Random(5)
    async with clients() as (ddb, sns):
        counting = Counting(ddb, config.alarms.state_table)
        sink = build_sink(config, topic, counting, sns, rules=RULES)
        for m in range(COMPACT_EVERY + 16):  # past one compaction
            await sink.write_readings(SHARD, minute(m, rng))
            await sink.flush()
        readings = 20 * (COMPACT_EVERY + 16)
        # 4 instance changes a reading; written on their own: the new ones, and those whose state changed
        assert counting.writes["instance"] < 0.3 * readings, counting.writes
        assert counting.writes["@j"] + counting.writes["@s"] <= COMPACT_EVERY + 16 + 2
        before = sink._shards[SHARD].engine.states()

        again = build_sink(
            config, topic, ddb, sns, rules=RULES
        )  # a restart: state from items, snapshot, journal
        await again.write_readings(SHARD, [])
        assert again._shards[SHARD].engine.states() == before

        await again.settle(SHARD)  # the shard stops here: every instance on its own item
    table = boto3.client("dynamodb")
    for s in before:
        item = table.get_item(TableName=config.alarms.state_table, Key={"pk": {"S": f"{s.rule}#{s.series}"}},
                              ConsistentRead=True)["Item"]  # fmt: skip
        assert int(item["version"]["N"]) == s.version, (s.rule, s.series)
