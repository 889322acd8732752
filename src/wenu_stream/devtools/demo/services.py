"""What the demo starts next to the stack: the simulator, the API, and an SQS queue on the alarms topic."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from wenu_stream.config import Config
from wenu_stream.errors import ConfigError

FAULTS = (
    "corrupt=0.004,unknown_key=0.003,tamper=0.003,malformed=0.002,duplicate=0.02,reorder=0.05,"
    "reorder_bound_s=10,duplicate_delay_s=3"
)
SEED = 7
AGGREGATE = 20


def start_simulator(
    config: Config, run_dir: Path, *, devices: int, interval_s: float, duration_s: float
) -> subprocess.Popen[bytes]:
    """`wenu-stream simulate` paced in real time with faults and anomalies; its summary is its last stdout line."""
    cmd = [
        sys.executable, "-m", "wenu_stream", "simulate", "--stream", config.kinesis.stream,
        "--keyring", config.keyring.file, "--devices", str(devices), "--interval", str(interval_s),
        "--duration", str(duration_s), "--seed", str(SEED), "--faults", FAULTS, "--aggregate", str(AGGREGATE),
        "--anomalies",
    ]  # fmt: skip
    log = (run_dir / "simulate.log").open("wb")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log)


def simulator_summary(sim: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The simulator's JSON summary (expected outcomes and alarms), once it has finished."""
    out, _ = sim.communicate(timeout=600)
    lines = out.decode().strip().splitlines()
    summary: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    return summary


def start_api(config: Config, run_dir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """`wenu-stream serve api` on a free loopback port over the demo's catalog and stack: process, URL, admin token."""
    import httpx

    from wenu_stream.web.auth import DevTokens

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    secret = str(run_dir / "api-dev-secret")
    env = {
        **os.environ,
        "WENU_CATALOG_URL": config.catalog.url,
        "WENU_API_PORT": str(port),
        "WENU_API_DEV_SECRET_FILE": secret,
        "WENU_LOG_LEVEL": "warning",
    }
    log = (run_dir / "api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wenu_stream", "serve", "api"], env=env, stdout=subprocess.DEVNULL, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise ConfigError(
                "wenu-stream serve api",
                f"the API did not start (see {run_dir / 'api.log'})",
                "run `wenu-stream serve api` by hand to see why",
            )
        time.sleep(0.1)
    api = config.api
    token = DevTokens.from_file(secret).mint(
        subject="demo-admin", role="admin", company=None, now_s=int(time.time()), ttl_s=12 * 3600,
        roles_claim=api.roles_claim, company_claim=api.company_claim,
    )  # fmt: skip
    return proc, url, token


def subscribe_queue(config: Config, name: str = "wenu-demo-alarms") -> str:
    """An SQS queue subscribed to the alarms topic (raw delivery), as an operator's pager would be; its URL."""
    import boto3

    from wenu_stream.aws.provision import ensure_alarm_topic

    (topic,) = ensure_alarm_topic(config, {})
    sqs = boto3.client("sqs")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns").subscribe(
        TopicArn=topic.removeprefix("sns topic "),
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return url


def received(url: str) -> list[dict[str, Any]]:
    """Every notification waiting in the queue (read and deleted)."""
    import boto3

    sqs, out = boto3.client("sqs"), []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
        "Messages", []
    ):
        out += [json.loads(m["Body"]) for m in got]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
        )
    return out
