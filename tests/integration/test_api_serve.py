"""`wenu-stream serve api` as a process: exit 2 on bad configuration, JSON logs on stderr with its URL, a
development token from `wenu-stream api token`, probes and metrics, a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.api_support import free_port

pytestmark = pytest.mark.integration


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wenu_stream", *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.slow
def test_serve_api_refuses_bad_config_with_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "WENU_API_PORT": "99999"}
    bad_port = cli("serve", "api", env=env)
    assert bad_port.returncode == 2 and "api.port" in bad_port.stderr and "WENU_API_PORT" in bad_port.stderr
    env = {**os.environ, "WENU_CATALOG_URL": "mysql://db/x"}
    bad_url = cli("serve", "api", env=env)
    assert bad_url.returncode == 2 and "WENU_CATALOG_URL" in bad_url.stderr
    env = {**os.environ, "WENU_API_OIDC_ISSUER": "https://issuer.example"}
    refused = cli("api", "token", "--role", "admin", env=env)
    assert refused.returncode == 2 and "development tokens are refused" in refused.stderr


@pytest.mark.slow
def test_serve_api_serves_probes_metrics_and_the_api_with_a_dev_token(
    aws_stack: object, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "WENU_CATALOG_URL": f"sqlite:///{tmp_path}/c.db",
        "WENU_API_PORT": str(port),
        "WENU_API_DEV_SECRET_FILE": str(tmp_path / "secret"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "wenu_stream", "serve", "api"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        assert httpx.get(url + "/readyz").text == "ready\n"
        token = cli("api", "token", "--role", "viewer", "--subject", "ana", env=env).stdout.strip()
        catalog = httpx.get(url + "/api/v1/catalog", headers={"Authorization": f"Bearer {token}"})
        assert catalog.status_code == 200 and catalog.json()["version"] == 0
        assert httpx.get(url + "/api/v1/catalog").status_code == 401
        metrics = httpx.get(url + "/metrics").text
        assert 'wenu_api_requests_total{method="GET",route="/api/v1/catalog",status="200"} 1.0' in metrics
        assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out == b""
    events = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    serving = next(e for e in events if e["event"] == "api_serving")
    assert serving["url"] == f"http://127.0.0.1:{port}" and serving["catalog_version"] == 0
    assert events[-1]["event"] == "api_stopped"
