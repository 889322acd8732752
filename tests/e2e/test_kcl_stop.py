"""A requested stop of the KCL path: the task exits 0 well within ECS's stopTimeout, and stderr is JSON only.

SIGTERM to the task (deploy/ecs/entrypoint.sh passes it to the MultiLangDaemon) makes the daemon ask each
shard process to checkpoint (shutdownRequested), then tell it the lease is gone; the process answers,
closes its SDK clients (no "Unclosed client session" on stderr) and exits 0 when the daemon closes its
stdin. The JVM itself always reports 143 after a SIGTERM; the entrypoint turns that into 0 for a stop it
forwarded. The daemon's own log (stdout) stays quiet at rest: the multilang protocol and KCL 3's lease
assignment are at WARN in deploy/ecs/logback.xml.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.e2e.test_kcl_daemon import DEVICES, Run, wait_for
from tests.fixtures.kcl import JARS, JVM_TEST_FLAGS, ROOT, KclDaemon
from tests.support.records import KEYS
from tests.support.scenario import fill_stream
from wenu_stream.devtools.emulator.stack import free_port

pytestmark = pytest.mark.e2e
ENTRYPOINT = ROOT / "deploy" / "ecs" / "entrypoint.sh"
REST_S = 10.0


def test_sigterm_checkpoints_and_the_task_exits_0_with_json_only_stderr(
    use_kinesis_local: str, unique_name: str, tmp_path: Path, kcl_daemons: list[KclDaemon]
) -> None:
    """Through the container's entrypoint, with the production properties and logging of deploy/ecs."""
    expected = fill_stream(unique_name, KEYS, shards=1, devices=DEVICES, duration_s=10, aggregate=0)
    run = Run(unique_name, unique_name, tmp_path, use_kinesis_local)
    ddb = boto3.client("dynamodb")
    for suffix, key in (
        ("CoordinatorState", "key"),
        ("WorkerMetricStats", "wid"),
    ):  # as the stack creates them
        table = f"{run.config.lease_table}-{suffix}"
        ddb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            DeletionProtectionEnabled=True,
        )
        ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
        ddb.update_continuous_backups(
            TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    Path(run.env["WENU_KEYRING_FILE"]).chmod(0o600)  # as in the task (the entrypoint writes it 0600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WENU_")} | run.env
    env |= {
        "PATH": f"{Path(sys.executable).parent}:{env['PATH']}",  # wenu-stream and python3 of this venv
        "APP_ROOT": str(ROOT),
        "KCL_JARS": str(JARS),
        "KCL_WORK": str(tmp_path / "kcl"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "WENU_METRICS_PORT": str(free_port()),
        "JAVA_OPTS": " ".join(JVM_TEST_FLAGS),
        "AWS_REGION": "us-east-1",
    }
    stdout, stderr = tmp_path / "task.out", tmp_path / "task.err"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(
            ["bash", str(ENTRYPOINT), "processing"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: run.records_done() == expected.user_records, "every record processed", [], timeout=180
        )
        rest_from = stdout.read_text(errors="replace").count("\n")
        time.sleep(REST_S)  # a worker at rest: what a long-running daemon does most of the time
        at_rest = stdout.read_text(errors="replace").splitlines()[rest_from:]
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # what ECS sends to the container's init, which passes it on
        code = proc.wait(timeout=120)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    lines = [line for line in stderr.read_text(errors="replace").splitlines() if line.strip()]
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a line on stderr is not JSON: {line!r}")
    info_per_s = sum(1 for line in at_rest if " INFO " in line) / REST_S
    print(
        f"exit {code} after {took:.1f} s; stderr {len(lines)} JSON lines; {info_per_s:.2f} daemon INFO lines/s at rest"
    )
    assert code == 0, stderr.read_text()[-2000:]
    assert took < 30  # within ECS's stopTimeout (deploy/ecs/task-definition-*.json)
    assert any(e.get("event", "").startswith("KCL daemon stopped on request") for e in events)
    assert info_per_s < 0.5  # one shard at rest: the protocol and lease assignment chatter is off
    checkpoints = run.checkpoints()
    assert checkpoints and all(c[0].isdigit() for c in checkpoints.values())
    protection = {}
    for suffix in ("", "-CoordinatorState", "-WorkerMetricStats"):  # the lease table is the daemon's own
        table = run.config.lease_table + suffix
        backups = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        protection[suffix or "leases"] = (
            ddb.describe_table(TableName=table)["Table"]["DeletionProtectionEnabled"],
            backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"],
        )
    print(protection)
    assert protection == dict.fromkeys(
        ("leases", "-CoordinatorState", "-WorkerMetricStats"), (True, "ENABLED")
    )
