"""`wenu-stream alarms list|history` read what the alarms sink stored."""

from __future__ import annotations

import json

import pytest

from tests.integration.alarm_support import build_sink, clients, provision
from tests.integration.test_alarm_notifications import scenario
from wenu_stream.cli.main import main

pytestmark = pytest.mark.integration


@pytest.fixture
async def alarm_tables(aws_stack: object, unique_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config, topic = provision(unique_name)
    async with clients() as (ddb, sns):
        sink = build_sink(config, topic, ddb, sns)
        await sink.write_readings("shardId-0", scenario())
        await sink.flush()
    monkeypatch.setenv("WENU_ALARMS_STATE_TABLE", config.alarms.state_table)
    monkeypatch.setenv("WENU_ALARMS_TRANSITIONS_TABLE", config.alarms.transitions_table)


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.slow
async def test_list_filters_by_state_and_company(
    alarm_tables: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alarms", "list", "--state", "firing", "-o", "jsonl"]) == 0
    firing = lines(capsys)
    # the scenario ends with temp, power and volts silent for 10+ minutes; everything else resolved
    assert sorted((r["rule"], r["series"]) for r in firing) == [
        ("silent", "power"),
        ("silent", "temp"),
        ("silent", "volts"),
    ]
    assert all(
        r["state"] == "firing" and r["severity"] == "warning" and r["last_transition"]["to_state"] == "firing"
        for r in firing
    )
    assert main(["alarms", "list", "--all", "-o", "jsonl"]) == 0
    assert len(lines(capsys)) == 4 + 4  # the four single-series rules, and silent on each of four series
    assert main(["alarms", "list", "-o", "jsonl"]) == 0  # ok instances hidden by default
    assert {r["state"] for r in lines(capsys)} == {"firing"}
    assert main(["alarms", "list", "--state", "ok", "--severity", "warning", "-o", "jsonl"]) == 0
    assert {(r["state"], r["severity"]) for r in lines(capsys)} == {("ok", "warning")}
    assert main(["alarms", "list", "--all", "--site", "nowhere", "-o", "jsonl"]) == 0
    assert lines(capsys) == []
    assert main(["alarms", "list", "--company", "other", "-o", "jsonl"]) == 0
    assert lines(capsys) == []
    assert main(["alarms", "list", "--state", "firing"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "state",
        "severity",
        "company",
        "site",
        "series",
        "rule",
        "last",
        "value",
        "last",
        "reading",
        "(UTC)",
        "since",
        "(UTC)",
    ]
    assert len(table) == 4 and all(line.startswith("firing") for line in table[1:])


@pytest.mark.slow
async def test_history_lists_a_series_transitions_in_time_order(
    alarm_tables: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alarms", "history", "--series", "water", "-o", "jsonl"]) == 0
    rows = lines(capsys)
    assert [(r["rule"], r["to_state"], r["value"], r["status"]) for r in rows] == [
        ("thirsty", "firing", 70.0, "published"),
        ("thirsty", "ok", 70.0, "published"),
        ("silent", "firing", 70.0, "published"),
        ("silent", "ok", 75.0, "published"),
    ]
    assert rows[0]["at"] == "2025-11-28T03:22:00.000+00:00"
    assert (
        main(["alarms", "history", "--series", "nothing-here"]) == 4
    )  # not found: the catalog does not know it
    out = capsys.readouterr()
    assert out.out == "" and "no series 'nothing-here'" in out.err and "Fix:" in out.err
