"""`wenu-stream serve-metrics`: one exporter merging the metrics of every shard process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

SHARD = textwrap.dedent("""
    import sys
    import time
    from prometheus_client import CollectorRegistry
    from wenu_stream.metrics import Metrics

    m = Metrics.create(CollectorRegistry())
    m.records.labels(app="alarms", outcome="accepted").inc(int(sys.argv[1]))
    m.leases_held.labels(app="alarms").set(int(sys.argv[2]))
    if len(sys.argv) > 3:
        m.checkpoint_age.labels(app="alarms", shard=sys.argv[3]).set(float(sys.argv[4]))
    if len(sys.argv) > 5:
        m.unready_until.labels(app="alarms", shard=sys.argv[3]).set(time.time() + float(sys.argv[5]))
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        return response.status, response.read().decode()


def wait_until_serving(url: str, process: subprocess.Popen[bytes], attempts: int = 200) -> None:
    for _ in range(attempts):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@pytest.fixture
def multiproc_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "prom"
    directory.mkdir()
    return directory


@pytest.fixture
def exporter(multiproc_dir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "wenu_stream", "serve-metrics", "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base + "/healthz", process)
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_exporter_sums_counters_and_gauges_of_every_shard_process(
    exporter: tuple[str, subprocess.Popen[bytes]], multiproc_dir: Path
) -> None:
    base, _process = exporter
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    for accepted, leases in ((3, 2), (4, 1)):  # two shard processes, each its own pid and files
        subprocess.run(
            [sys.executable, "-c", SHARD, str(accepted), str(leases)], env=env, check=True, timeout=60
        )
    status, body = get(base + "/metrics")
    assert status == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    assert samples[("wenu_records_total", (("app", "alarms"), ("outcome", "accepted")))] == 7
    assert samples[("wenu_leases_held", (("app", "alarms"),))] == 3  # multiprocess_mode="sum"


def test_healthz_answers_and_sigterm_stops_cleanly(exporter: tuple[str, subprocess.Popen[bytes]]) -> None:
    base, process = exporter
    assert get(base + "/healthz") == (200, "ok\n")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert process.stdout is not None and process.stdout.read() == b""  # stdout is never written


def test_missing_multiprocess_directory_exits_2_naming_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run(
        [sys.executable, "-m", "wenu_stream", "serve-metrics", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "PROMETHEUS_MULTIPROC_DIR" in done.stderr and "Fix:" in done.stderr


def test_missing_port_exits_2(multiproc_dir: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    env.pop("WENU_METRICS_PORT", None)
    done = subprocess.run(
        [sys.executable, "-m", "wenu_stream", "serve-metrics"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "WENU_METRICS_PORT" in done.stderr


def test_binds_loopback_by_default_and_names_a_port_in_use(multiproc_dir: Path) -> None:
    """Like the worker's endpoint: 127.0.0.1 unless WENU_METRICS_HOST says otherwise; a busy port is exit 2."""

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    env.pop("WENU_METRICS_HOST", None)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "wenu_stream", "serve-metrics", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert (
        done.returncode == 2
        and f"WENU_METRICS_PORT = {port}" in done.stderr
        and "Traceback" not in done.stderr
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "wenu_stream", "serve-metrics", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        started = json.loads(process.stderr.readline())
        assert started["event"] == "metrics_serving" and started["host"] == "127.0.0.1"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def test_readyz_is_503_while_a_shard_process_reports_a_stalled_checkpoint(
    exporter: tuple[str, subprocess.Popen[bytes]], multiproc_dir: Path
) -> None:
    """The KCL path's readiness: the shard processes' checkpoint age, merged (max) like the metric."""
    base, _process = exporter
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}

    def shard(shard_id: str, age: float) -> None:
        subprocess.run(
            [sys.executable, "-c", SHARD, "0", "1", shard_id, str(age)], env=env, check=True, timeout=60
        )

    assert get(base + "/readyz") == (200, "ready\n")  # no shard yet: an idle worker is ready
    shard("shardId-000000000000", 12)
    assert get(base + "/readyz") == (200, "ready\n")
    shard("shardId-000000000001", 420)
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(base + "/readyz")
    assert refused.value.code == 503
    assert (
        refused.value.read().decode()
        == "not ready: checkpoint stalled on alarms/shardId-000000000001 (420 s)\n"
    )


def test_readyz_is_503_while_a_shard_process_reports_itself_not_ready(
    exporter: tuple[str, subprocess.Popen[bytes]], multiproc_dir: Path
) -> None:
    """A shard process renews ``wenu_unready_until_seconds`` while not ready; a past value (it died) is ignored."""
    base, _process = exporter
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}

    def shard(shard_id: str, unready_for: float) -> None:
        subprocess.run(
            [sys.executable, "-c", SHARD, "0", "1", shard_id, "0", str(unready_for)],
            env=env,
            check=True,
            timeout=60,
        )

    shard("shardId-000000000000", -5)  # its last report has expired (a process that stopped renewing it)
    assert get(base + "/readyz") == (200, "ready\n")
    shard("shardId-000000000001", 60)
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(base + "/readyz")
    assert refused.value.code == 503
    assert refused.value.read().decode() == "not ready: alarms/shardId-000000000001 (see its log)\n"
