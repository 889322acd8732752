"""Alarm lifecycle through the API next to a real alarms sink (DynamoDB state, ledger, SNS -> SQS): ack, shelve
(a shelved transition is recorded, not sent), a rule edit that keeps state and re-sends nothing, and the rule
preview over stats windows a real stats sink stored."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import msgspec
import pytest
from aiobotocore.session import get_session

from tests.integration.alarm_support import drain, subscribe
from tests.integration.api_support import Api, api_config, running_api, seed
from wenu_stream.alarms.sink import AlarmsSink
from wenu_stream.aws.alarm_state import DynamoAlarmStateStore
from wenu_stream.aws.notifier import SnsNotifier
from wenu_stream.aws.stats_store import DynamoStatsStore
from wenu_stream.catalog.directory import CatalogDirectory
from wenu_stream.catalog.store import CatalogStore
from wenu_stream.model import Position, SeriesReading
from wenu_stream.stats.sink import StatsSink

pytestmark = pytest.mark.integration
MIN = 60_000
SERIES = "acme-hq.main.power"


@pytest.fixture
async def clients(aws_stack: object) -> AsyncIterator[tuple[Any, Any]]:
    session = get_session()
    async with session.create_client("dynamodb") as ddb, session.create_client("sns") as sns:
        yield ddb, sns


@pytest.fixture
def api(aws_stack: object, postgres_database: str, unique_name: str, tmp_path: Path) -> Any:
    with running_api(api_config(unique_name, postgres_database, tmp_path)) as running:
        seed(running)
        yield running


def power(t: int, value: float, n: int) -> SeriesReading:
    return SeriesReading(
        series=SERIES,
        company="acme",
        site="acme-hq",
        timezone="America/Santiago",
        kind="gauge",
        unit="W",
        device="EM-000001",
        ch="active_power_w",
        seq=n,
        index=0,
        t=t,
        value=value,
        raw_value=value,
        position=Position(1000 + n),
    )


class Worker:
    """The alarms application's sink on this test's tables, following the catalog through its cache."""

    def __init__(self, api: Api, ddb: Any, sns: Any) -> None:
        cfg = api.config
        self.store = CatalogStore(cfg.catalog.url)
        self.directory = CatalogDirectory(self.store.snapshot, lambda: 0, 30, version=self.store.version)
        topic = next(
            t["TopicArn"]
            for t in boto3.client("sns").list_topics()["Topics"]
            if t["TopicArn"].endswith(":" + cfg.alarms.topic_name)
        )
        self.queue = subscribe(topic, cfg.alarms.topic_name + "-q")
        state = DynamoAlarmStateStore(ddb, table=cfg.alarms.state_table, stream=cfg.kinesis.stream)
        notifier = SnsNotifier(
            sns,
            ddb,
            topic_arn=topic,
            table=cfg.alarms.transitions_table,
            stream=cfg.kinesis.stream,
            state_table=cfg.alarms.state_table,
            backoff_cap_s=0.2,
        )
        self.sink = AlarmsSink(
            state,
            notifier,
            rules=self.directory.snapshot().rules,
            rules_source=lambda: self.directory.snapshot().rules,
        )
        self.n = 0

    async def feed(self, *points: tuple[int, float], rule: str = "hq-power-high") -> list[dict[str, Any]]:
        """Evaluate readings, flush (durable state, ledger, SNS), and return what the subscriber received of
        ``rule`` (the spec catalog's other rules watch the series too)."""
        for t, v in points:
            self.n += 1
            await self.sink.write_readings("shardId-0", [power(t, v, self.n)])
        await self.sink.flush()
        return [body for body, _ in drain(self.queue) if body["rule"] == rule]


@pytest.mark.slow
async def test_ack_and_shelve_are_audited_and_a_shelved_transition_is_recorded_not_sent(
    api: Api, clients: tuple[Any, Any]
) -> None:
    worker = Worker(api, *clients)
    t0 = int(time.time() * 1000)  # shelves judge reading times from the moment they are set
    sent = await worker.feed((t0, 60000), (t0 + MIN, 61000), (t0 + 3 * MIN, 62000))  # > 50000 for 120 s
    assert [(b["rule"], b["state"]) for b in sent] == [("hq-power-high", "firing")]

    viewer, operator = api.client("viewer"), api.client("operator", subject="olga")
    firing = viewer.get("/api/v1/alarms", params={"state": "firing"}).json()["items"]
    assert [(a["rule"], a["series"], a["acknowledged"], a["timezone"]) for a in firing] == [
        ("hq-power-high", SERIES, False, "America/Santiago")
    ]
    assert firing[0]["last_reading"].endswith("-03:00")  # the site's offset
    overview = {s["series"]: s for s in viewer.get("/api/v1/companies/acme/series").json()["items"]}
    assert overview[SERIES]["alarm_state"] == "firing" and overview[SERIES]["firing"] == ["hq-power-high"]
    assert overview["acme-hq.main.energy"]["alarm_state"] == "ok"
    assert viewer.post(f"/api/v1/alarms/hq-power-high/{SERIES}/ack", json={"comment": "x"}).status_code == 403
    acked = operator.post(f"/api/v1/alarms/hq-power-high/{SERIES}/ack", json={"comment": "crew on site"})
    assert acked.status_code == 200 and acked.json()["acknowledged"] is True
    assert acked.json()["ack"]["by"] == "olga" and acked.json()["ack"]["comment"] == "crew on site"
    assert operator.post(f"/api/v1/alarms/hq-power-silent/{SERIES}/ack", json={}).status_code in (404, 409)

    until = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t0 / 1000 + 3600))
    shelved = operator.put(
        f"/api/v1/alarms/hq-power-high/{SERIES}/shelf", json={"until": until, "comment": "works"}
    )
    assert shelved.status_code == 200 and shelved.json()["shelf"]["by"] == "olga"
    assert operator.put(f"/api/v1/alarms/hq-power-high/{SERIES}/shelf", json={}).status_code == 422

    assert (
        await worker.feed((t0 + 4 * MIN, 1000)) == []
    )  # resolves (below clear 45000) while shelved: not sent
    history = viewer.get(f"/api/v1/series/{SERIES}/transitions", params={"rule": "hq-power-high"}).json()[
        "items"
    ]
    assert [(h["to_state"], h["status"]) for h in history] == [("firing", "published"), ("ok", "shelved")]
    assert history[1]["shelved_by"] == "olga"
    assert (
        await worker.feed((t0 + 5 * MIN, 1000)) == []
    )  # a replay-safe ledger: nothing pending is left behind

    assert operator.delete(f"/api/v1/alarms/hq-power-high/{SERIES}/shelf").status_code == 204
    sent = await worker.feed((t0 + 6 * MIN, 70000), (t0 + 9 * MIN, 70000))
    assert [(b["rule"], b["state"]) for b in sent] == [("hq-power-high", "firing")]
    actions = [a["action"] for a in api.client("admin").get("/api/v1/audit").json()["items"]]
    assert actions[:4] == ["alarm.unshelve", "alarm.shelve", "alarm.ack", "catalog.apply"]
    worker.store.close()


async def test_a_rule_edit_keeps_the_firing_state_and_sends_nothing_again(
    api: Api, clients: tuple[Any, Any]
) -> None:
    worker = Worker(api, *clients)
    t0 = int(time.time() * 1000)
    sent = await worker.feed((t0, 60000), (t0 + 3 * MIN, 60000))
    assert [b["state"] for b in sent if b["rule"] == "hq-power-high"] == ["firing"]

    admin = api.client("admin")
    made = admin.post(
        "/api/v1/changesets",
        json={
            "reason": "raise the bar",
            "operations": [
                {
                    "op": "update",
                    "kind": "rule",
                    "id": "hq-power-high",
                    "set": {"value": 58000, "clear": 50000},
                }
            ],
        },
    ).json()
    impact = admin.get(f"/api/v1/changesets/{made['draft']['id']}/impact").json()["impact"]
    assert [(a["rule"], a["outcome"]) for a in impact["alarms"]] == [("hq-power-high", "kept")]
    assert admin.post(f"/api/v1/changesets/{made['draft']['id']}/apply").status_code == 200
    worker.directory.refresh()

    # Still above the new clear level: the instance keeps firing, and the edit itself sends nothing.
    assert await worker.feed((t0 + 4 * MIN, 55000), (t0 + 5 * MIN, 59000)) == []
    state = api.client("viewer").get(f"/api/v1/alarms/hq-power-high/{SERIES}").json()
    assert state["state"] == "firing"
    sent = await worker.feed((t0 + 6 * MIN, 40000))  # below the new clear: one ok
    assert [(b["rule"], b["state"]) for b in sent] == [("hq-power-high", "ok")]
    worker.store.close()


@pytest.mark.slow
async def test_rule_preview_runs_the_engine_over_stored_windows_next_to_what_was_notified(
    api: Api, clients: tuple[Any, Any]
) -> None:
    ddb, _ = clients
    worker = Worker(api, *clients)
    stats = StatsSink(DynamoStatsStore(ddb, api.config.stats.table), clock=lambda: int(time.time() * 1000))
    t0 = (int(time.time() * 1000) // (15 * MIN) - 12) * 15 * MIN  # three hours ago, on a window start
    values = (
        [20000] * 20 + [52000] * 8 + [20000] * 8 + [56000] * 4 + [20000] * 8
    )  # two bumps, one reading a minute
    points = [(t0 + i * 3 * MIN, float(v)) for i, v in enumerate(values)]
    readings = [power(t, v, n) for n, (t, v) in enumerate(points, start=1)]
    await stats.write_readings("shardId-0", readings)
    await stats.flush()
    sent = await worker.feed(*points)
    assert [b["state"] for b in sent if b["rule"] == "hq-power-high"] == ["firing", "ok", "firing", "ok"]
    site = api.client("viewer", company="acme").get(
        "/api/v1/companies/acme/series", params={"site": "acme-hq"}
    )
    power_now = {s["series"]: s for s in site.json()["items"]}[SERIES]
    assert power_now["latest_value"] == 20000.0 and power_now["latest_at"].endswith("-03:00")
    assert power_now["alarm_state"] in ("ok", "firing")  # only the silence rule may still fire on it
    assert "hq-power-high" not in power_now["firing"]

    viewer = api.client("viewer")
    draft_rule = {
        "id": "hq-power-high",
        "series": SERIES,
        "type": "threshold",
        "op": ">",
        "value": 55000,
        "clear": 45000,
        "for_s": 120,
        "severity": "critical",
    }
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 / 1000))
    got = viewer.post("/api/v1/rules/preview", json={"rule": draft_rule, "from": start}).json()
    assert got["windows"] >= 9 and got["timezone"] == "America/Santiago"
    assert [t["to_state"] for t in got["would_have"]] == ["firing", "ok"]  # only the second, higher bump
    assert [t["to_state"] for t in got["notified"]] == ["firing", "ok", "firing", "ok"]
    assert all(t["status"] == "published" for t in got["notified"])
    bad = viewer.post("/api/v1/rules/preview", json={"rule": {**draft_rule, "clear": 60000}})
    assert bad.status_code == 422 and bad.json()["extra"]["problems"][0].startswith("$.rule.clear")
    other = viewer.post("/api/v1/rules/preview", json={"rule": draft_rule, "series": "bravo-plant.power"})
    assert other.status_code == 422  # the rule does not watch that series
    customer = api.client("viewer", company="bravo")
    assert customer.post("/api/v1/rules/preview", json={"rule": draft_rule}).status_code == 404
    assert msgspec.json.decode(msgspec.json.encode(got))  # plain JSON throughout
    worker.store.close()


@pytest.mark.slow
async def test_a_preview_over_the_warehouse_is_exact_the_unchanged_rule_gives_the_notified_ids(
    aws_stack: object, postgres_database: str, unique_name: str, tmp_path: Path, clients: tuple[Any, Any]
) -> None:
    import psycopg

    from wenu_stream.warehouse.rows import COLUMN_NAMES, to_row
    from wenu_stream.warehouse.sql import pg_schema

    config = api_config(unique_name, postgres_database, tmp_path, **{"warehouse.dsn": postgres_database})
    with running_api(config) as api:
        seed(api)
        worker = Worker(api, *clients)
        t0 = int(time.time() * 1000) - 3_600_000
        values = [20000, 52000, 53000, 54000, 30000, 20000, 20000, 57000, 58000, 59000, 60000, 40000]
        points = [(t0 + i * MIN, float(v)) for i, v in enumerate(values)]
        sent = await worker.feed(*points)
        rows = [
            msgspec.structs.astuple(to_row("shardId-0", power(t, v, n)))
            for n, (t, v) in enumerate(points, start=1)
        ]
        with psycopg.connect(postgres_database, autocommit=True) as conn:  # what the warehouse loader leaves
            for statement in pg_schema("wenu"):
                conn.execute(statement)
            conn.cursor().executemany(
                f"INSERT INTO wenu.readings ({', '.join(COLUMN_NAMES)}, measured_at) VALUES "
                f"({', '.join(['%s'] * len(COLUMN_NAMES))}, to_timestamp(%s / 1000.0))",
                [(*r, r[COLUMN_NAMES.index("t_ms")]) for r in rows],
            )
        rule = {
            "id": "hq-power-high",
            "series": SERIES,
            "type": "threshold",
            "op": ">",
            "value": 50000,
            "clear": 45000,
            "for_s": 120,
            "severity": "critical",
        }
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 / 1000 - 60))
        same = (
            api.client("viewer")
            .post("/api/v1/rules/preview", json={"rule": rule, "from": start, "source": "warehouse"})
            .json()
        )
        assert same["exact"] is True and same["readings"] == len(points)
        assert [t["transition_id"] for t in same["would_have"]] == [
            t["transition_id"] for t in same["notified"]
        ]
        assert [t["transition_id"] for t in same["notified"]] == [b["transition_id"] for b in sent]
        stricter = (
            api.client("viewer")
            .post(
                "/api/v1/rules/preview",
                json={"rule": {**rule, "for_s": 180}, "from": start, "source": "warehouse"},
            )
            .json()
        )
        assert [t["to_state"] for t in stricter["would_have"]] == [
            "firing",
            "ok",
        ]  # the first episode is too short
        worker.store.close()


async def test_quiet_hours_in_the_sites_zone_hold_back_transitions_inside_them(
    api: Api, clients: tuple[Any, Any]
) -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    worker = Worker(api, *clients)
    t0 = int(time.time() * 1000)
    assert [b["state"] for b in await worker.feed((t0, 60000), (t0 + 3 * MIN, 60000))] == ["firing"]
    local = dt.datetime.fromtimestamp(t0 / 1000, ZoneInfo("America/Santiago"))  # the site's zone
    quiet = {"quiet_start": (local - dt.timedelta(hours=1)).strftime("%H:%M"),
             "quiet_end": (local + dt.timedelta(hours=1)).strftime("%H:%M"), "comment": "night shift"}  # fmt: skip
    operator = api.client("operator")
    shelf = operator.put(f"/api/v1/alarms/hq-power-high/{SERIES}/shelf", json=quiet).json()["shelf"]
    assert shelf["timezone"] == "America/Santiago" and shelf["quiet_start"] == quiet["quiet_start"]
    assert (
        await worker.feed((t0 + 4 * MIN, 1000)) == []
    )  # the ok falls inside the quiet hours: recorded, not sent
    history = api.client("viewer").get(
        f"/api/v1/series/{SERIES}/transitions", params={"rule": "hq-power-high"}
    )
    assert [(h["to_state"], h["status"]) for h in history.json()["items"]] == [
        ("firing", "published"),
        ("ok", "shelved"),
    ]
    bad = operator.put(
        f"/api/v1/alarms/hq-power-high/{SERIES}/shelf", json={"quiet_start": "7pm", "quiet_end": "x"}
    )
    assert bad.status_code == 422 and len(bad.json()["extra"]["problems"]) == 2
    worker.store.close()
