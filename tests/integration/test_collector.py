"""The stage's metrics collector (deploy/prometheus/agent.yml) for real: a Prometheus agent on loopback.

The production configuration passes ``promtool check config``. Then the same configuration runs in a real
Prometheus agent, with each Cloud Map DNS name replaced by a loopback target (nothing else changed but the
scrape interval and the remote-write URL, whose SigV4 only AMP checks): it scrapes a running worker, a
Pushgateway holding a warehouse load's push, a dead target and itself, and remote-writes all of it to a
second Prometheus standing in for Amazon Managed Service for Prometheus. The receiver then holds the
stage label on every series, ``up`` per job (0 for the dead target), the worker's metrics and the pushed
load metrics under their own job.
"""

from __future__ import annotations

import json
import signal
import string
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_prometheus import api, wait_for
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
AGENT = ROOT / "deploy" / "prometheus" / "agent.yml"


def rendered(**values: str) -> str:
    return string.Template(AGENT.read_text()).substitute(values)


def test_the_production_configuration_passes_promtool(prometheus_tools: None, tmp_path: Path) -> None:
    config = tmp_path / "agent.yml"
    config.write_text(
        rendered(
            STAGE="prod",
            NAMESPACE="wenu-prod.internal",
            REGION="eu-west-1",
            REMOTE_WRITE_URL="https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write",
        )
    )
    done = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def serve(argv: list[str], log: Path, base: str) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 - the process owns it until it ends
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def ready() -> bool:
        try:
            return urllib.request.urlopen(base + "/-/ready", timeout=2).status == 200
        except OSError:
            return proc.poll() is not None and pytest.fail(log.read_text()[-2000:])

    wait_for(ready, 60, f"{argv[0]} ready")
    return proc


@pytest.fixture
def receiver(prometheus_tools: None, tmp_path: Path) -> Iterator[str]:
    """A Prometheus that accepts remote writes (the stand-in for the AMP workspace)."""
    port = free_port()
    (tmp_path / "receiver.yml").write_text("global: {}\n")
    base = f"http://127.0.0.1:{port}"
    proc = serve(
        [
            "prometheus",
            f"--config.file={tmp_path / 'receiver.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={tmp_path / 'receiver-tsdb'}",
            "--web.enable-remote-write-receiver",
        ],
        tmp_path / "receiver.log",
        base,
    )
    try:
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def loopback_config(receiver: str, agent_port: int, targets: dict[str, str]) -> dict[str, Any]:
    """The production configuration with each DNS name as a loopback target, 1 s scrapes, plain remote write."""
    config = yaml.safe_load(
        rendered(STAGE="test", NAMESPACE="wenu-test.internal", REGION="eu-west-1", REMOTE_WRITE_URL="unused")
    )
    config["global"].update(scrape_interval="1s", scrape_timeout="1s")
    for job in config["scrape_configs"]:
        if job["job_name"] == "wenu-collector":
            job["static_configs"] = [{"targets": [f"127.0.0.1:{agent_port}"]}]
            continue
        (sd,) = job.pop("dns_sd_configs")
        (name,) = sd["names"]
        assert name == f"{job['job_name'].removeprefix('wenu-')}.wenu-test.internal"
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    (write,) = config["remote_write"]
    write.pop("sigv4")  # AMP checks it; the stand-in does not
    write["url"] = f"{receiver}/api/v1/write"
    write["queue_config"]["batch_send_deadline"] = "1s"
    return config


@pytest.mark.slow
def test_the_agent_scrapes_every_job_and_remote_writes_with_the_stage_label(
    aws_stack: object, unique_name: str, receiver: str, pushgateway: str, tmp_path: Path
) -> None:
    from wenu_stream.warehouse.metrics import push, run_registry

    push(pushgateway, "redshift", run_registry(None, now_s=1_700_000_000))  # a failed load run
    worker_port, agent_port, dead_port = free_port(), free_port(), free_port()
    targets = {
        "wenu-processing": f"127.0.0.1:{worker_port}",
        "wenu-alarms": f"127.0.0.1:{dead_port}",  # nothing listens: up == 0
        "wenu-api": f"127.0.0.1:{dead_port}",
        "wenu-pushgateway": pushgateway.removeprefix("http://"),
    }
    config = tmp_path / "agent.yml"
    config.write_text(yaml.safe_dump(loopback_config(receiver, agent_port, targets)))
    fill_stream(unique_name, KEYS, shards=1, devices=2, duration_s=10)
    env = run_config(
        unique_name, unique_name, write_keyring(tmp_path / "keys.json", KEYS), WENU_METRICS_PORT=worker_port
    )
    prepare(env, fleet_catalog_for(2))
    worker = start_worker(env, tmp_path / "worker.log")
    agent = serve(
        [
            "prometheus",
            "--enable-feature=agent",  # the collector's flags (monitoring.COLLECTOR_SCRIPT)
            f"--config.file={config}",
            f"--storage.agent.path={tmp_path / 'agent-wal'}",
            f"--web.listen-address=127.0.0.1:{agent_port}",
        ],
        tmp_path / "agent.log",
        f"http://127.0.0.1:{agent_port}",
    )
    try:

        def ups() -> dict[str, str] | None:
            result = api(receiver, "/api/v1/query", query='up{stage="test"}')["result"]
            found = {r["metric"]["job"]: r["value"][1] for r in result}
            return found if len(found) == 5 else None

        assert wait_for(ups, 90, "up of every job at the receiver") == {
            "wenu-alarms": "0",
            "wenu-api": "0",
            "wenu-processing": "1",
            "wenu-pushgateway": "1",
            "wenu-collector": "1",
        }

        def leases() -> list[Any]:
            return api(receiver, "/api/v1/query", query='wenu_leases_held{app="processing",stage="test"}')[
                "result"
            ]

        (held,) = wait_for(leases, 60, "the worker's leases at the receiver")
        assert held["metric"]["job"] == "wenu-processing" and float(held["value"][1]) == 1
        query = 'wenu_warehouse_last_run_ok{stage="test",target="redshift"}'
        (pushed,) = api(receiver, "/api/v1/query", query=query)["result"]
        assert pushed["metric"]["job"] == "wenu-warehouse-load"  # honor_labels keeps the pushing job
        assert (pushed["metric"]["target"], pushed["value"][1]) == ("redshift", "0")
        # The receiver evaluates the shipped rules as AMP would: the dead-target rule is healthy PromQL.
        query = urllib.parse.quote('max by (job) (up{job=~"wenu-.*"}) == 0')
        down = json.load(urllib.request.urlopen(f"{receiver}/api/v1/query?query={query}", timeout=10))["data"]
        assert {r["metric"]["job"] for r in down["result"]} == {"wenu-alarms", "wenu-api"}
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, (tmp_path / "worker.log").read_text()[-3000:]
