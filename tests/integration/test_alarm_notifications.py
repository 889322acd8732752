"""Each rule type publishes exactly its transitions to SNS, with the spec's body and filterable attributes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.alarm_support import (
    MIN,
    RULES,
    T0,
    build,
    build_sink,
    clients,
    drain,
    provision,
    reading,
    subscribe,
)
from wenu_stream.alarms.engine import Notification, transition_id
from wenu_stream.alarms.message import Readable, readable
from wenu_stream.catalog.directory import ChannelInfo

pytestmark = pytest.mark.integration


def scenario() -> list:
    """Readings of one shard, in order, that move every rule type through firing and back to ok."""
    rs = []
    for i, v in enumerate(
        [20, 31, 32, 33, 24]
    ):  # hot: pending at +1min, fires at +3min (held 120 s), clears at +4
        rs.append(reading("temp", T0 + i * MIN, v))
    for i, v in enumerate([10, 20, 500, 520]):  # jump: +480/min at +2min fires, +20/min at +3 resolves
        rs.append(reading("power", T0 + i * MIN, v))
    for i, v in enumerate([230, 230, 230, 231]):  # frozen: third equal value fires, a different one resolves
        rs.append(reading("volts", T0 + i * MIN, v))
    for i, v in enumerate([0, 30, 70]):  # thirsty: 70 consumed in the 03:15 window (> 50) at 03:22
        rs.append(reading("water", T0 + i * MIN, v, kind="counter"))
    rs.append(
        reading("water", T0 + 20 * MIN, 75, kind="counter")
    )  # the 03:15 window ended at 03:30: resolved
    rs.sort(key=lambda r: r.t)
    return rs


async def test_every_rule_type_notifies_each_transition_once_with_body_and_attributes(
    aws_stack: object, unique_name: str
) -> None:
    config, topic = provision(unique_name)
    queue = subscribe(topic, unique_name)
    async with clients() as (ddb, sns):
        sink = build_sink(config, topic, ddb, sns)
        for r in scenario():
            await sink.write_readings("shardId-0", [r])
        await sink.flush()
        await sink.flush()  # a second flush has nothing new to say
    got = drain(queue)
    moves = sorted((b["rule"], b["series"], b["state"], b["at"], b["value"]) for b, _ in got)
    assert moves == sorted([
        ("hot", "temp", "firing", T0 + 3 * MIN, 33.0), ("hot", "temp", "ok", T0 + 4 * MIN, 24.0),
        ("jump", "power", "firing", T0 + 2 * MIN, 480.0), ("jump", "power", "ok", T0 + 3 * MIN, 20.0),
        ("frozen", "volts", "firing", T0 + 2 * MIN, 230.0), ("frozen", "volts", "ok", T0 + 3 * MIN, 231.0),
        ("thirsty", "water", "firing", T0 + 2 * MIN, 70.0), ("thirsty", "water", "ok", T0 + 10 * MIN, 70.0),
        # silent watches every acme series: the watermark reached +20 min, 10 min past each other series' last reading
        ("silent", "temp", "firing", T0 + 14 * MIN, 24.0), ("silent", "power", "firing", T0 + 13 * MIN, 520.0),
        ("silent", "volts", "firing", T0 + 13 * MIN, 231.0), ("silent", "water", "firing", T0 + 12 * MIN, 70.0),
        ("silent", "water", "ok", T0 + 20 * MIN, 75.0),
    ])  # fmt: skip
    hot = next(b for b, _ in got if b["rule"] == "hot" and b["state"] == "firing")
    assert hot == {
        "rule": "hot",
        "series": "temp",
        "company": "acme",
        "site": "hq",
        "severity": "critical",
        "state": "firing",
        "value": 33.0,
        "at": T0 + 3 * MIN,
        "transition_id": transition_id("hot", "temp", T0 + MIN, "firing"),
    }
    for body, attributes in got:
        assert attributes == {"severity": body["severity"], "company": "acme", "state": body["state"]}


@pytest.mark.slow
async def test_a_severity_filter_policy_receives_only_its_share(aws_stack: object, unique_name: str) -> None:
    config, topic = provision(unique_name)
    everything = subscribe(topic, unique_name + "-all")
    critical = subscribe(topic, unique_name + "-crit", {"severity": ["critical"]})
    async with clients() as (ddb, sns):
        sink = build_sink(config, topic, ddb, sns)
        await sink.write_readings("shardId-0", scenario())
        await sink.flush()
    every = drain(everything)
    crit = drain(critical)
    assert len(every) == 13
    assert sorted(b["transition_id"] for b, _ in crit) == sorted(
        b["transition_id"] for b, _ in every if b["severity"] == "critical"
    )
    assert {b["rule"] for b, _ in crit} == {"hot"} and len(crit) == 2


async def test_people_get_a_subject_and_texts_while_machines_keep_the_json_body(
    aws_stack: object, unique_name: str
) -> None:
    """MessageStructure=json: e-mail and SMS texts for people, "default" (the JSON body) for every other protocol."""
    config, topic = provision(unique_name)
    raw, envelope = subscribe(topic, unique_name + "-raw"), subscribe(topic, unique_name + "-env", raw=False)
    temp = ChannelInfo(
        series="temp", company="acme", site="hq", timezone="Europe/Madrid", kind="gauge", unit="°C",
        scale=1.0, offset=0.0,
    )  # fmt: skip

    def describe(note: Notification) -> Readable:
        rule = next(r for r in RULES if r.id == note.rule)
        return readable(
            note, series=temp if note.series == "temp" else None, rule=rule, link_base="https://w.example"
        )

    async with clients() as (ddb, sns):
        sent: list[dict[str, Any]] = []
        sns.meta.events.register(
            "before-parameter-build.sns.Publish", lambda params, **_: sent.append(dict(params))
        )
        sink, _notifier = build(config, topic, ddb, sns, describe=describe)
        for r in scenario():
            if r.series == "temp":
                await sink.write_readings("shardId-0", [r])
        await sink.flush()
    fired = next(p for p in sent if p.get("Subject", "").startswith("[critical] hot firing"))
    assert fired["Subject"] == "[critical] hot firing on temp at hq" and fired["MessageStructure"] == "json"
    texts = json.loads(fired["Message"])
    assert json.loads(texts["default"])["rule"] == "hot"
    assert "Reading time: 2025-11-28 04:23:00 CET (Europe/Madrid)" in texts["email"]
    assert (
        "Value: 33 °C" in texts["email"]
        and "Condition: above 30 °C for 120 s, resolves past 25 °C" in texts["email"]
    )
    assert "Alarm console: https://w.example/ui/alarms?site=hq" in texts["email"]
    assert texts["sms"].startswith("[critical] hot firing temp 33 °C at 04:23:00 CET")
    bodies = [body for body, _ in drain(raw)]
    assert sorted((b["rule"], b["state"]) for b in bodies) == [
        ("hot", "firing"),
        ("hot", "ok"),
    ]  # the JSON body
    wrapped = [body for body, _ in drain(envelope)]
    assert {w["Subject"] for w in wrapped} == {
        "[critical] hot firing on temp at hq",
        "[critical] hot resolved on temp at hq",
    }
    assert all(json.loads(w["Message"])["series"] == "temp" for w in wrapped)
