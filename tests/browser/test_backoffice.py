"""The backoffice's main flows in a real browser, against the running service, a real PostgreSQL catalog, the local
AWS stack and a real alarms worker (`wenu-stream run`, native driver) consuming a Kinesis stream.

An admin signs in, opens a rule, sees a problem at its field, previews the draft over the stored windows against
what was notified, saves it as a draft change set, sees the impact and applies it; the worker picks the new
version up and the alarm it raises appears in the console (auto-refreshing), where an operator acknowledges it;
the old version is restored. A customer sees only its own company.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiobotocore.session import get_session
from playwright.sync_api import expect

from tests.browser.conftest import running_service, screenshot, sign_in
from tests.fixtures.aws import create_stream
from tests.integration.api_support import api_config, seed
from tests.support.records import KEYS, envelope
from tests.support.scenario import prepare, run_config, start_worker, write_keyring
from wenu_stream.aws.stats_store import DynamoStatsStore
from wenu_stream.model import Position, SeriesReading
from wenu_stream.records.payload import Message, Reading
from wenu_stream.stats.sink import StatsSink

pytestmark = pytest.mark.integration
SERIES = "acme-hq.main.power"
MIN = 60_000


def history(now_ms: int) -> list[tuple[int, float]]:
    """Five hours of power, one reading every 3 minutes, ending an hour ago: a 35 kW bump the current rule
    (> 50 kW for 120 s) ignores, then a 52 kW one it fires on."""
    t0 = (now_ms // (15 * MIN) - 24) * 15 * MIN
    values = [20000] * 20 + [35000] * 5 + [20000] * 20 + [52000] * 8 + [20000] * 47
    return [(t0 + i * 3 * MIN, float(v)) for i, v in enumerate(values)]


def put_readings(stream: str, points: list[tuple[int, float]], first_seq: int) -> int:
    """Encrypted records of device EM-000001 (channel active_power_w) onto the stream; return the next seq."""
    kinesis = boto3.client("kinesis")
    seq = first_seq
    for t, v in points:
        msg = Message(
            device="EM-000001", seq=seq, sent_at=t + 100, readings=(Reading(ch="active_power_w", t=t, v=v),)
        )
        kinesis.put_record(StreamName=stream, Data=envelope(msg), PartitionKey="EM-000001")
        seq += 1
    return seq


async def write_stats(table: str, points: list[tuple[int, float]]) -> None:
    """The processing application's windows for the same readings (its stats sink on the emulator's DynamoDB)."""
    async with get_session().create_client("dynamodb") as ddb:
        stats = StatsSink(
            DynamoStatsStore(ddb, table), clock=lambda: int(time.time() * 1000), lateness_s=86_400
        )
        readings = [SeriesReading(series=SERIES, company="acme", site="acme-hq", timezone="America/Santiago",
                                  kind="gauge", unit="W", device="EM-000001", ch="active_power_w", seq=n, index=0,
                                  t=t, value=v, raw_value=v, position=Position(1000 + n))
                    for n, (t, v) in enumerate(points, start=1)]  # fmt: skip
        await stats.write_readings("shardId-0", readings)
        await stats.flush()


@pytest.fixture
def stack(aws_stack: object, postgres_database: str, unique_name: str, tmp_path: Path) -> Any:
    """The service over a seeded catalog, and an alarms worker on the stream, sharing catalog and tables."""
    config = api_config(unique_name, postgres_database, tmp_path)
    create_stream(config.kinesis.stream, 1)
    keyring = write_keyring(tmp_path / "keyring.json", KEYS)
    env = run_config(config.kinesis.stream, unique_name + "-w", keyring, WENU_APP="alarms",
                     WENU_CATALOG_URL=postgres_database, WENU_CATALOG_REFRESH_S="1",
                     WENU_ALARMS_STATE_TABLE=config.alarms.state_table,
                     WENU_ALARMS_TRANSITIONS_TABLE=config.alarms.transitions_table,
                     WENU_ALARMS_TOPIC_NAME=config.alarms.topic_name, WENU_ALARMS_IDLE_TICK_S="1")  # fmt: skip
    prepare(env)
    with running_service(config) as api:
        seed(api)
        worker = start_worker(env, tmp_path / "worker.log")
        try:
            yield api, worker
        finally:
            worker.terminate()
            worker.wait(timeout=30)


def notified(api: Any, rule: str) -> list[str]:
    got = api.client("viewer").get(f"/api/v1/series/{SERIES}/transitions", params={"rule": rule}).json()
    return [t["to_state"] for t in got["items"]]


def in_thread(run: Any) -> None:
    """Run ``run`` in its own thread (the sync Playwright API keeps an event loop in this one)."""
    failed: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(run, failed))
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


def _capture(run: Any, failed: list[BaseException]) -> None:
    try:
        run()
    except BaseException as exc:  # noqa: BLE001 - handed back to the test's thread
        failed.append(exc)


def wait_for(check: Any, what: str, timeout_s: float = 90.0, every_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every_s)


@pytest.mark.slow
def test_edit_preview_apply_alarm_ack_and_restore_in_the_browser(
    stack: Any, new_page: Any, tmp_path: Path
) -> None:
    api, worker = stack
    now = int(time.time() * 1000)
    points = history(now)
    in_thread(lambda: asyncio.run(write_stats(api.config.stats.table, points)))
    seq = put_readings(api.config.kinesis.stream, points, first_seq=1)
    wait_for(
        lambda: notified(api, "hq-power-high") == ["firing", "ok"], "the worker to notify the 52 kW bump"
    )

    page = new_page()
    sign_in(page, api, "admin", subject="ana")
    assert "ana · admin" in page.inner_text("[data-testid=who]")
    screenshot(page, "alarms-console-before")

    # The rule editor: a hysteresis level on the wrong side is a problem shown at its field.
    page.goto(api.url + "/ui/rules/hq-power-high")
    page.fill("#r-value", "30000")
    page.fill("#r-clear", "35000")
    page.press("#r-clear", "Tab")
    problem = page.locator("[data-testid=error-clear]")
    problem.wait_for()
    assert "at or below value" in problem.inner_text()
    expect(page.locator("#r-clear")).to_have_attribute("aria-invalid", "true")  # set once the swap settles
    page.fill("#r-clear", "25000")
    page.fill("#r-for_s", "0")  # typed while the check of clear may still run: what is typed stays
    page.press("#r-for_s", "Tab")
    page.locator("[data-testid=error-clear]").wait_for(state="detached")

    # Preview over the last day: the draft fires on both bumps; the rule was notified firing once.
    page.fill("#days", "1")
    page.press("#days", "Tab")
    page.wait_for_load_state("networkidle")
    page.click("button:has-text('Preview')")
    summary = page.locator("[data-testid=preview-summary]")
    summary.wait_for()
    text = summary.inner_text()
    assert "would have fired 2 time(s)" in text and "notified firing 1 time(s)" in text, text
    page.locator("[data-testid=preview-chart] canvas").first.wait_for()
    screenshot(page, "rule-editor-preview")
    page.select_option("#source", "warehouse")  # exact readings: this service has no warehouse, said in place
    page.wait_for_load_state("networkidle")
    page.click("button:has-text('Preview')")
    page.locator("#preview .error").wait_for()
    assert "warehouse" in page.inner_text("#preview .error")

    # A reason typed while the editor's check is on its way back survives the re-render it brings.
    held: list[Any] = []
    page.route("**/ui/rules/check", lambda route: held.append(route))  # noqa: PLW0108 - Playwright wraps a Python function, not a builtin
    page.select_option("#source", "stats")
    wait_for(lambda: held or page.wait_for_timeout(50), "the check the change sends", 30, 0)
    page.fill("#r-reason", "lower the power limit for the winter tariff")
    page.eval_on_selector("#rule-form", "form => { form.dataset.before = '1'; }")
    with page.expect_response("**/ui/rules/check"):
        held[0].continue_()
    page.unroute("**/ui/rules/check")
    page.wait_for_selector("#rule-form:not([data-before])", state="attached")
    assert page.input_value("#r-reason") == "lower the power limit for the winter tariff"

    # Save as a draft change set: its review shows the impact, then apply with a reason.
    page.click("button:has-text('Save as draft change set')")
    page.wait_for_url("**/ui/changes/*")
    page.locator("[data-testid=valid]").wait_for()
    impact = page.inner_text("[data-testid=impact]")
    assert "hq-power-high" in impact and "value" in impact
    screenshot(page, "change-set-impact")
    page.click("button:has-text('Apply')")
    page.wait_for_url("**/ui/versions?applied=*")
    versions = page.inner_text("[data-testid=versions]")
    assert "lower the power limit for the winter tariff" in versions and "ana" in versions
    applied = int(page.url.rsplit("=", 1)[1])

    # The worker picks the new version up: 40 kW now fires the lowered rule; the console shows it by itself.
    page.goto(api.url + "/ui/alarms?state=firing")
    row = page.locator(f"tr[data-rule=hq-power-high][data-series='{SERIES}'][data-state=firing]")
    deadline = time.monotonic() + 90
    while not row.count():
        assert time.monotonic() < deadline, "the alarm did not appear in the console"
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        seq = put_readings(
            api.config.kinesis.stream, [(int(time.time() * 1000), 40000.0 + seq)], first_seq=seq
        )
        page.wait_for_timeout(1000)  # the console polls every few seconds
    assert notified(api, "hq-power-high")[-1] == "firing"

    # An operator acknowledges it with a comment.
    operator = new_page()
    sign_in(operator, api, "operator", subject="olga")
    operator.goto(api.url + "/ui/alarms?state=firing")
    firing = operator.locator(f"tr[data-rule=hq-power-high][data-series='{SERIES}']")
    firing.locator("summary:has-text('Acknowledge')").click()
    firing.locator("form[hx-post='/ui/alarms/ack'] input[name=comment]").fill("crew on site")
    firing.locator("button:has-text('Acknowledge')").click()
    operator.locator("[data-testid=alarm-message]").wait_for()
    acked = operator.locator(f"tr[data-rule=hq-power-high][data-series='{SERIES}'] [data-testid=acked]")
    assert "acked by olga" in acked.inner_text()
    screenshot(operator, "alarms-console-acknowledged")
    firing = operator.locator(f"tr[data-rule=hq-power-high][data-series='{SERIES}']")
    firing.locator("summary:has-text('Shelve')").click()
    firing.locator("input[name=until]").fill("2099-01-01T08:00")  # wall time in the site's zone
    firing.locator("input[name=comment]").last.fill("maintenance")
    firing.locator("button:has-text('Shelve')").click()
    shelved = operator.locator(f"tr[data-rule=hq-power-high][data-series='{SERIES}'] [data-testid=shelved]")
    shelved.wait_for()
    assert "until 2099-01-01 08:00" in shelved.inner_text()
    shelf = api.client("viewer").get(f"/api/v1/alarms/hq-power-high/{SERIES}").json()["shelf"]
    assert shelf["by"] == "olga" and shelf["timezone"] == "America/Santiago"
    operator.goto(api.url + "/ui/alarms/noisy?days=2")
    noisy = operator.locator("[data-testid=noisy-table] tbody tr").first
    assert noisy.locator("td").first.inner_text() == "hq-power-high"  # the rule with the most transitions
    assert operator.locator("a[href='/ui/catalog']").count() == 1  # staff navigation
    operator.goto(api.url + "/ui/rules/hq-power-high")
    assert operator.locator("text=Save as draft change set").count() == 0  # an operator may not change rules

    # The series page: the chart with its transitions, times in the site's zone, named.
    page.goto(api.url + f"/ui/series/{SERIES}?window=15m")
    assert "America/Santiago" in page.inner_text("[data-testid=series-zone]")
    page.locator("[data-testid=series-chart] canvas").first.wait_for()
    assert "firing" in page.inner_text("[data-testid=timeline]")
    screenshot(page, "series-chart")

    # Restore the version before the edit: a new draft, reviewed, applied.
    page.goto(api.url + "/ui/versions")
    page.click(f"[data-testid=restore-{applied - 1}]")
    page.wait_for_url("**/ui/changes/*")
    assert "value" in page.inner_text("[data-testid=impact]")
    page.click("button:has-text('Apply')")
    page.wait_for_url("**/ui/versions?applied=*")
    catalog = api.client("viewer").get("/api/v1/catalog").json()
    rule = next(r for r in catalog["document"]["alarm_rules"] if r["id"] == "hq-power-high")
    assert (rule["value"], rule["clear"], rule["for_s"]) == (50000, 45000, 120)
    page.goto(api.url + f"/ui/versions/diff?from={applied - 1}&to={applied + 1}")
    assert "No entity changes" in page.inner_text("[data-testid=entity-changes]")
    audit = [e["action"] for e in api.client("admin").get("/api/v1/audit").json()["items"]]
    assert audit[:4] == ["catalog.apply", "alarm.shelve", "alarm.ack", "catalog.apply"]


@pytest.mark.slow
def test_a_customer_sees_only_its_company_and_no_staff_pages(stack: Any, new_page: Any) -> None:
    api, _ = stack
    page = new_page()
    sign_in(page, api, "viewer", company="bravo", subject="bea")
    page.goto(api.url + "/ui/sites")
    companies = page.locator("[data-company]")
    assert [companies.nth(i).get_attribute("data-company") for i in range(companies.count())] == ["bravo"]
    assert (
        page.locator("a[href='/ui/catalog']").count() == 0 and page.locator("a[href='/ui/ops']").count() == 0
    )
    screenshot(page, "customer-sites")
    for path, status in (("/ui/sites/acme-hq", "Not found"), (f"/ui/series/{SERIES}", "Not found"),
                         ("/ui/catalog", "Not allowed"), ("/ui/ops", "Not allowed"), ("/ui/versions", "Not allowed")):  # fmt: skip
        response = page.goto(api.url + path)
        assert response.status in (403, 404) and page.inner_text("h1") == status, path
    page.goto(api.url + "/ui/sites/bravo-plant")
    assert "Europe/Madrid" in page.inner_text("[data-testid=site-zone]")
    assert "bravo-plant.power" in page.inner_text("[data-testid=site-table]")
    assert json.dumps(api.client("viewer", company="bravo").get("/api/v1/alarms").json()).count("acme") == 0
