"""Readings the catalog does not map are quarantined, listed, and re-driven once the catalog maps them."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path

import boto3
import pytest

from tests.support.records import KEYS
from tests.support.scenario import (
    fill_stream,
    fleet_catalog_for,
    import_catalog,
    prepare,
    run_config,
    write_keyring,
)
from wenu_stream.cli.main import main
from wenu_stream.cli.run import consume
from wenu_stream.config import load_config

pytestmark = pytest.mark.integration


def objects(bucket: str, prefix: str) -> list[str]:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.mark.slow
def test_unmapped_readings_wait_in_quarantine_until_the_catalog_maps_them(
    aws_stack: object,
    unique_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    fill_stream(unique_name, KEYS, shards=2, devices=8, duration_s=20, aggregate=0)
    full = fleet_catalog_for(8)
    partial = copy.deepcopy(full)
    site = partial["companies"][0]["sites"][0]
    missing = site["devices"].pop(0)["id"]
    partial["alarm_rules"] = [r for r in partial["alarm_rules"] if "match" in r]  # rules of its series go too
    env = run_config(unique_name, unique_name, keyring, WENU_KINESIS_IDLE_EXIT_S=1)
    config = prepare(env, partial)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert asyncio.run(consume(load_config(env))) == 0

    assert objects(config.sinks.bucket, "quarantine/")
    assert main(["quarantine", "list", "-o", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["device"] for r in rows} == {missing} and all(r["reason"] == "unknown_device" for r in rows)
    quarantined = sum(r["readings"] for r in rows)

    assert main(["quarantine", "redrive", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["still_unmapped"] == quarantined
    import_catalog(config, full)
    assert main(["quarantine", "redrive"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["mapped"] == quarantined and done["still_unmapped"] == 0
    assert objects(config.sinks.bucket, "quarantine/") == []
