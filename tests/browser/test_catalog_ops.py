"""Catalog edits and operations in a real browser, with a real processing worker (`wenu-stream run`) on the stream:
search, a bulk edit of two rules, a field problem, a CSV import previewed (a bad line named) then applied, and the
operations page: a record with a key the worker lacks is dead-lettered, an unknown meter is quarantined; once the
catalog maps the meter the quarantine re-drive processes its reading, and the letter re-drive puts the record back.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.browser.conftest import running_service, screenshot, sign_in
from tests.fixtures.aws import create_stream
from tests.integration.api_support import api_config, seed
from tests.support.records import KEYS, envelope
from tests.support.scenario import prepare, run_config, start_worker, write_keyring
from wenu_stream.records.payload import Message, Reading

pytestmark = pytest.mark.integration
NEW_SERIES = "acme-hq.new.power"


def put(stream: str, device: str, seq: int, value: float, key_id: str) -> None:
    t = int(time.time() * 1000)
    msg = Message(
        device=device, seq=seq, sent_at=t + 100, readings=(Reading(ch="active_power_w", t=t, v=value),)
    )
    boto3.client("kinesis").put_record(StreamName=stream, Data=envelope(msg, key_id), PartitionKey=device)


def keys_under(bucket: str, prefix: str) -> list[str]:
    got = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in got.get("Contents", [])]


def wait_for(check: Any, what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return found


@pytest.fixture
def stack(aws_stack: object, postgres_database: str, unique_name: str, tmp_path: Path) -> Any:
    """The service (its key ring has both keys) and a processing worker whose key ring lacks k1."""
    every_key = write_keyring(tmp_path / "keyring.json", KEYS)
    config = api_config(unique_name, postgres_database, tmp_path,
                        **{"keyring.file": str(every_key), "lease.table": f"{unique_name}-p-leases"})  # fmt: skip
    create_stream(config.kinesis.stream, 1)
    worker_keys = write_keyring(tmp_path / "worker-keyring.json", {"k2": KEYS["k2"]})
    env = run_config(config.kinesis.stream, unique_name + "-p", worker_keys, WENU_APP="processing",
                     WENU_CATALOG_URL=postgres_database, WENU_CATALOG_REFRESH_S="1",
                     WENU_SINKS_BUCKET=config.sinks.bucket, WENU_STATS_TABLE=config.stats.table)  # fmt: skip
    prepare(env)
    with running_service(config) as api:
        seed(api)
        worker = start_worker(env, tmp_path / "worker.log")
        try:
            yield api, worker
        finally:
            worker.terminate()
            worker.wait(timeout=30)


@pytest.mark.slow
def test_bulk_edit_csv_import_and_the_re_drives_in_the_browser(stack: Any, new_page: Any) -> None:
    api, worker = stack
    cfg = api.config
    stream, bucket = cfg.kinesis.stream, cfg.sinks.bucket
    put(stream, "EM-000001", 1, 1000.0, key_id="k1")  # the worker has no k1: dead-lettered as unknown_key
    put(stream, "EM-NEW", 1, 2500.0, key_id="k2")  # no such meter in the catalog: quarantined
    letters = wait_for(
        lambda: keys_under(bucket, f"dead-letter/processing/{stream}/unknown_key/"), "a dead letter"
    )
    wait_for(lambda: keys_under(bucket, f"quarantine/processing/{stream}/"), "a quarantined reading")

    page = new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the re-drive buttons ask first
    sign_in(page, api, "admin")
    page.goto(api.url + "/ui/ops")
    assert "unknown_key" in page.inner_text("[data-testid=letters-processing]")
    assert "EM-NEW" in page.inner_text("[data-testid=quarantine]")
    assert "shardId-000000000000" in page.inner_text(
        "[data-app=processing]"
    )  # the worker's lease and checkpoint
    screenshot(page, "operations")

    # Search, then one field set on two selected rules: one draft, its impact, applied.
    page.goto(api.url + "/ui/catalog")
    page.fill("#q", "hq-power")
    page.wait_for_load_state("networkidle")
    rules = page.locator("section[data-kind=rule]")
    assert "hq-daily-energy" not in rules.inner_text()
    rules.locator("input[value=hq-power-high]").check()
    rules.locator("input[value=hq-power-jump]").check()
    rules.locator("select[name=field]").select_option("severity")
    rules.locator("input[name=value]").fill("minor")
    screenshot(page, "catalog-bulk-edit")
    rules.locator("button:has-text('Bulk edit')").click()
    page.wait_for_url("**/ui/changes/*")
    changes = page.inner_text("[data-testid=entity-changes]")
    assert "hq-power-high" in changes and "hq-power-jump" in changes and "minor" in changes
    page.click("button:has-text('Apply')")
    page.wait_for_url("**/ui/versions?applied=*")

    # A problem is shown at its field, and nothing is kept.
    page.goto(api.url + "/ui/catalog/site/acme-hq")
    page.fill("#f-timezone", "Mars/Base")
    page.click("button:has-text('Save as draft change set')")
    assert "unknown time zone" in page.inner_text("[data-testid=error-timezone]")

    # CSV import: a bad line is named in the review; the corrected import adds the meter's series.
    header = "device,ch,series,kind,unit,scale,offset\n"
    page.goto(api.url + "/ui/catalog/import")
    page.select_option("#site", "acme-hq")
    page.fill("#csv", header + f"EM-NEW,active_power_w,{NEW_SERIES},gaug,W,1,0\n")
    page.click("button:has-text('Preview the import')")
    page.wait_for_url("**/ui/changes/*")
    problems = page.inner_text("[data-testid=problems]")
    assert "line" in problems and "kind" in problems, problems
    assert page.locator("button:has-text('Apply')").is_disabled()
    page.goto(api.url + "/ui/catalog/import")
    page.select_option("#site", "acme-hq")
    page.fill("#csv", header + f"EM-NEW,active_power_w,{NEW_SERIES},gauge,W,1,0\n")
    page.click("button:has-text('Preview the import')")
    page.wait_for_url("**/ui/changes/*")
    assert f"+ {NEW_SERIES}" in page.inner_text("[data-testid=impact]")
    page.click("button:has-text('Apply')")
    page.wait_for_url("**/ui/versions?applied=*")

    # The catalog now maps EM-NEW: the quarantine re-drive processes its reading (stats) and empties it.
    page.goto(api.url + "/ui/ops")
    page.click("button:has-text('Re-drive what the catalog now maps')")
    page.locator("[data-testid=ops-message]").wait_for()
    assert "Empty." in page.inner_text("[data-testid=quarantine]")
    stats = api.client("viewer").get(f"/api/v1/series/{NEW_SERIES}/stats", params={"window": "15m"}).json()
    assert [w["last"] for w in stats["items"]] == [2500.0]

    # The service's key ring has k1: the letter decodes now and goes back to the stream (worker stopped first,
    # so the record stays there for the check).
    worker.terminate()
    worker.wait(timeout=30)
    before = _records(stream)
    page.goto(api.url + "/ui/ops")
    page.locator("[data-testid=letters-processing] button:has-text('Re-drive')").click()
    message = page.locator("[data-testid=ops-message]")
    message.wait_for()
    assert "'redriven': 1" in message.inner_text() or '"redriven": 1' in message.inner_text(), (
        message.inner_text()
    )
    assert keys_under(bucket, letters[0]) == []
    assert _records(stream) == before + 1
    audit = [e["action"] for e in api.client("admin").get("/api/v1/audit").json()["items"]]
    assert audit[:2] == ["deadletters.redrive", "quarantine.redrive"]


def _records(stream: str) -> int:
    kinesis = boto3.client("kinesis")
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    total = 0
    while it:
        got = kinesis.get_records(ShardIterator=it, Limit=1000)
        total += len(got["Records"])
        if not got["Records"] or got.get("MillisBehindLatest", 0) == 0:
            return total
        it = got.get("NextShardIterator")
    return total
