"""The shipped alert rules under promtool, and a real Prometheus server scraping a running worker on loopback."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.records import KEYS
from tests.support.scenario import (
    fill_stream,
    fleet_catalog_for,
    prepare,
    run_config,
    start_worker,
    write_keyring,
)
from wenu_stream.devtools.emulator.stack import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "wenu-stream.json"


@pytest.mark.slow
def test_alert_rules_check_and_pass_their_unit_tests(prometheus_tools: None) -> None:
    check = subprocess.run(
        ["promtool", "check", "rules", "wenu-alerts.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0 and "SUCCESS: 14 rules found" in check.stdout, check.stdout + check.stderr
    tested = subprocess.run(
        ["promtool", "test", "rules", "wenu-alerts.test.yml"],
        cwd=RULES,
        capture_output=True,
        check=False,
        text=True,
    )
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else base + path
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.5)


@pytest.fixture
def prometheus(prometheus_tools: None, tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    """A Prometheus on 127.0.0.1 that will scrape ``target_port`` every second (config written by the test)."""
    port, target_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES / "wenu-alerts.yml")],
                "scrape_configs": [
                    {"job_name": "wenu", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
                ],
            }
        )
    )
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return urllib.request.urlopen(base + "/-/ready", timeout=2).status == 200
            except OSError:
                return proc.poll() is not None and pytest.fail(
                    (tmp_path / "prometheus.log").read_text()[-2000:]
                )

        wait_for(ready, 60, "prometheus ready")
        yield base, target_port, tmp_path
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_prometheus_scrapes_a_running_worker(
    aws_stack: object, unique_name: str, prometheus: tuple[str, int, Path]
) -> None:
    base, metrics_port, tmp_path = prometheus
    expected = fill_stream(unique_name, KEYS, shards=1, devices=4, duration_s=30)
    env = run_config(
        unique_name, unique_name, write_keyring(tmp_path / "keys.json", KEYS), WENU_METRICS_PORT=metrics_port
    )
    prepare(env, fleet_catalog_for(4))
    worker = start_worker(env, tmp_path / "worker.log")
    try:

        def accepted() -> float | None:
            result = api(
                base, "/api/v1/query", query='sum(wenu_records_total{app="processing",outcome="accepted"})'
            )
            value = float(result["result"][0]["value"][1]) if result["result"] else None
            return value if value == expected.accepted else None

        assert wait_for(accepted, 120, "prometheus sees every accepted record") == expected.accepted
        up = api(base, "/api/v1/query", query='up{job="wenu"}')["result"]
        assert [sample["value"][1] for sample in up] == ["1"]
        leases = api(base, "/api/v1/query", query='sum(wenu_leases_held{app="processing"})')["result"]
        assert float(leases[0]["value"][1]) == 1
        rules = api(base, "/api/v1/rules")["groups"][0]["rules"]
        assert len(rules) == 14 and all(rule["health"] == "ok" for rule in rules)
        for expr in dashboard_queries():  # every dashboard query is valid PromQL on a real server
            api(base, "/api/v1/query", query=expr)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, (tmp_path / "worker.log").read_text()[-3000:]


def dashboard_queries() -> list[str]:
    """The dashboard's PromQL with Grafana's variables replaced by what Grafana would send."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    return [re.sub(r"\$__rate_interval", "1m", e).replace("$app", ".*") for e in exprs]
