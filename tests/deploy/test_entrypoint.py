"""deploy/ecs/entrypoint.sh: refusals before any side effect, and the KCL engine's start and stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.test_serve_metrics import free_port
from tests.fixtures.aws import create_stream

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "ecs" / "entrypoint.sh"
HEALTHCHECK = ROOT / "deploy" / "ecs" / "healthcheck.sh"


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This virtualenv first on PATH (wenu-stream, python3), scratch dirs, a stale metrics file."""
    prom = tmp_path / "prom"
    prom.mkdir(exist_ok=True)
    (prom / "counter_123.db").write_bytes(b"stale")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WENU_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env['PATH']}",
        PROMETHEUS_MULTIPROC_DIR=str(prom),
        KCL_WORK=str(tmp_path / "kcl"),
        APP_ROOT=str(ROOT),
        **extra,
    )
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("args", "extra", "message"),
    [
        (["bogus"], {}, "unknown argument 'bogus'"),
        ([], {}, "no application given"),
        (["alarms"], {"WENU_KINESIS_STREEM": "x"}, "WENU_KINESIS_STREEM: unknown setting"),
        (["alarms"], {"KCL_JARS": "/nonexistent"}, "no KCL MultiLangDaemon classpath in /nonexistent"),
        pytest.param(
            ["alarms"],
            {"WENU_METRICS_PORT": "0"},
            "WENU_METRICS_PORT is not set",
            marks=pytest.mark.integration,
        ),  # checked after the classpath: needs `make kcl`
    ],
)
def test_refuses_bad_arguments_and_configuration_with_exit_2_before_any_side_effect(
    tmp_path: Path, args: list[str], extra: dict[str, str], message: str
) -> None:
    env = environment(tmp_path, **extra)
    done = run(env, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert (tmp_path / "prom" / "counter_123.db").read_bytes() == b"stale"  # not wiped
    assert not (tmp_path / "kcl").exists()


@pytest.mark.integration  # past the classpath check: needs `make kcl`
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("failoverTimeMillis", "'failoverTimeMillis' is not key=value"),
        ("failoverTimeMilis=1", "failoverTimeMilis"),
    ],
)
def test_kcl_overrides_are_checked_before_anything_starts(
    tmp_path: Path, overrides: str, message: str
) -> None:
    env = environment(tmp_path, WENU_METRICS_PORT="9", KCL_OVERRIDES=overrides)
    done = run(env, "processing")
    assert done.returncode == 2
    assert message in done.stderr
    assert (tmp_path / "prom" / "counter_123.db").read_bytes() == b"stale"  # not wiped: nothing started


def _healthy(env: dict[str, str]) -> bool:
    return (
        subprocess.run(
            ["bash", str(HEALTHCHECK)], env=env, capture_output=True, timeout=10, check=False
        ).returncode
        == 0
    )


@pytest.mark.slow
@pytest.mark.integration
def test_kcl_engine_wipes_metrics_serves_health_and_stops_the_daemon_on_sigterm(
    tmp_path: Path, aws_stack: Any, unique_name: str
) -> None:
    """Renders the properties for this environment, starts exporter and daemon, forwards SIGTERM."""
    create_stream(unique_name)
    port = free_port()
    env = environment(
        tmp_path,
        WENU_METRICS_PORT=str(port),
        WENU_KINESIS_STREAM=unique_name,
        WENU_LEASE_TABLE=f"{unique_name}-lease",
        WENU_LOG_LEVEL="warning",
        KCL_OVERRIDES="failoverTimeMillis=12000",
    )
    process = subprocess.Popen(
        ["bash", str(ENTRYPOINT), "processing"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        for _ in range(300):  # JVM and exporter start-up; bounded by attempts, not by a time limit
            if process.poll() is not None or _healthy(env):
                break
            time.sleep(0.2)
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert _healthy(env)
        assert not (tmp_path / "prom" / "counter_123.db").exists()
        rendered = (tmp_path / "kcl" / "processing.properties").read_text()
        assert "failoverTimeMillis = 12000" in rendered  # KCL_OVERRIDES
        assert f"streamName = {unique_name}" in rendered
        assert f"applicationName = {unique_name}-lease" in rendered
        assert f"kinesisEndpoint = {os.environ['AWS_ENDPOINT_URL_KINESIS']}" in rendered
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=90) == 0  # a stop we asked for (the JVM itself reports 143)
        stderr = process.stderr.read().decode() if process.stderr else ""
        assert "KCL daemon stopped on request" in stderr
        assert all(json.loads(line) for line in stderr.splitlines() if line.strip())  # JSON lines only
        assert not _healthy(env)  # the exporter went with the daemon
    finally:
        if process.poll() is None:  # the test failed midway: stop the entrypoint, the daemon and the exporter
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


SECRET = {
    "engine": "postgres",
    "host": "catalog.example.internal",
    "port": 5432,
    "username": "wenu_app",
    "password": "p@ss:w/rd%",
    "dbname": "wenu_catalog",
}


def test_a_command_after_double_dash_runs_with_the_catalog_url_composed_from_the_rds_secret(
    tmp_path: Path,
) -> None:
    """The API and one-off tasks: the RDS secret (JSON) becomes WENU_CATALOG_URL; the JSON is not passed on."""
    import json

    env = environment(tmp_path, CATALOG_DB_SECRET_JSON=json.dumps(SECRET))
    script = 'echo "$WENU_CATALOG_URL"; echo "${CATALOG_DB_SECRET_JSON:-gone}"'
    done = run(env, "--", "bash", "-c", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "postgresql://wenu_app:p%40ss%3Aw%2Frd%25@catalog.example.internal:5432/wenu_catalog?sslmode=require",
        "gone",
    ]
    checked = run(env, "--", "wenu-stream", "check-config")
    assert checked.returncode == 0, checked.stderr
    catalog = json.loads(checked.stdout)["catalog"]["url"]
    assert (
        catalog.startswith("postgresql://wenu_app:***@catalog.example.internal:5432/")
        and "p%40ss" not in catalog
    )


@pytest.mark.parametrize(
    ("args", "extra", "message"),
    [
        (["--"], {}, "no command after --"),
        (["--", "true"], {"CATALOG_DB_SECRET_JSON": "{not json"}, "CATALOG_DB_SECRET_JSON is not JSON"),
        (["--", "true"], {"CATALOG_DB_SECRET_JSON": '{"host": "h"}'}, "CATALOG_DB_SECRET_JSON lacks port"),
        (
            ["alarms"],
            {"CATALOG_DB_SECRET_JSON": '{"host": "h"}', "WENU_CATALOG_URL": "sqlite:///x.db"},
            "both WENU_CATALOG_URL and CATALOG_DB_SECRET_JSON are set",
        ),
    ],
)
def test_a_bad_catalog_secret_or_command_exits_2_naming_it(
    tmp_path: Path, args: list[str], extra: dict[str, str], message: str
) -> None:
    done = run(environment(tmp_path, **extra), *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert not (tmp_path / "kcl").exists()
