"""A requested stop of the KCL path: the task exits 0 well within ECS's stopTimeout, and stderr is JSON only.

SIGTERM to the task (deploy/ecs/entrypoint.sh passes it to the MultiLangDaemon) makes the daemon ask each
shard process to checkpoint (shutdownRequested), then tell it the lease is gone; the process answers,
closes its SDK clients (no "Unclosed client session" on stderr) and exits 0 when the daemon closes its
stdin. The JVM itself always reports 143 after a SIGTERM; the entrypoint turns that into 0 for a stop it
forwarded. The daemon's own log (stdout) stays quiet at rest: the multilang protocol and KCL 3's lease
assignment are at WARN in deploy/ecs/logback.xml.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest

from tests.e2e.test_kcl_daemon import DEVICES, Run, assert_effects, wait_for
from tests.fixtures.aws import create_stream
from tests.fixtures.kcl import JARS, JVM_TEST_FLAGS, ROOT, KclDaemon
from tests.support.fault_proxy import fault_proxy
from tests.support.probes import readyz
from tests.support.records import KEYS
from tests.support.scenario import FAULTS, fill_stream, start_worker
from wenu_stream.devtools.emulator.stack import free_port
from wenu_stream.devtools.simulate import SimulationConfig, Tally, generate, parse_faults
from wenu_stream.devtools.simulate.producer import KinesisProducer, Pacer, put_all

pytestmark = pytest.mark.e2e
ENTRYPOINT = ROOT / "deploy" / "ecs" / "entrypoint.sh"
REST_S = 10.0
# The production file's lease assignment and shard sync run every 20-60 s: a task took ~100 s to lease its
# shards. The stop and the logging under test are the production ones (failover, shutdownGraceMillis kept).
FAST_START = (
    "leaseAssignmentIntervalMillis=1000 shardSyncIntervalMillis=1000 parentShardPollIntervalMillis=500"
)


def create_daemon_tables(run: Run) -> None:
    """The KCL daemon's coordinator and worker-metrics tables, as the stack creates them."""
    ddb = boto3.client("dynamodb")
    for suffix, key in (("CoordinatorState", "key"), ("WorkerMetricStats", "wid")):
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


def task_processes(group: int, within_s: float) -> list[str]:
    """The command lines of the task's process group still running after ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        pids = subprocess.run(["pgrep", "-g", str(group)], capture_output=True, text=True).stdout.split()
        if not pids or time.monotonic() > deadline:
            left = []
            for pid in pids:
                with contextlib.suppress(OSError):  # gone meanwhile
                    left.append(Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " "))
            return left
        time.sleep(0.2)


def start_task(run: Run, tmp_path: Path, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    """The container's entrypoint with the production properties and logging of deploy/ecs (task.out, task.err)."""
    create_daemon_tables(run)
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
        "KCL_OVERRIDES": FAST_START,
    } | extra
    with open(tmp_path / "task.out", "wb") as out, open(tmp_path / "task.err", "wb") as err:
        return subprocess.Popen(
            ["bash", str(ENTRYPOINT), "processing"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


def test_sigterm_checkpoints_and_the_task_exits_0_with_json_only_stderr(
    use_kinesis_local: str, unique_name: str, tmp_path: Path, kcl_daemons: list[KclDaemon]
) -> None:
    """Through the container's entrypoint, with the production properties and logging of deploy/ecs."""
    expected = fill_stream(unique_name, KEYS, shards=1, devices=DEVICES, duration_s=10, aggregate=0)
    run = Run(unique_name, unique_name, tmp_path, use_kinesis_local)
    ddb = boto3.client("dynamodb")
    stdout, stderr = tmp_path / "task.out", tmp_path / "task.err"
    proc = start_task(run, tmp_path, {})
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


def test_sigterm_during_an_s3_black_hole_stops_the_task_in_time_unchecked_and_the_replay_loses_nothing(
    use_kinesis_local: str, unique_name: str, tmp_path: Path
) -> None:
    """The shard process cannot make its batch durable (S3 holds every upload): the exporter's /readyz says so,
    and a SIGTERM still ends the task within ECS's stopTimeout (the daemon's shutdownGraceMillis, 20 s). The batch
    is not checkpointed; the next owner (here the native driver) replays it and nothing is lost."""
    create_stream(unique_name, 1)
    producer = KinesisProducer(unique_name)
    sim = SimulationConfig(
        devices=DEVICES, interval_s=1.0, duration_s=10, seed=9, aggregate=0, faults=parse_faults(FAULTS)
    )
    records, tally = list(generate(sim, KEYS)), Tally()
    put_all(records[::2], producer.put, Pacer("none"), tally=tally)
    first_half = tally.result().records
    run, port = Run(unique_name, unique_name, tmp_path, use_kinesis_local), free_port()
    moto = urlsplit(os.environ["AWS_ENDPOINT_URL"])
    with fault_proxy(moto.hostname or "127.0.0.1", moto.port or 80) as proxy:
        extra = {"AWS_ENDPOINT_URL_S3": proxy.url, "WENU_METRICS_PORT": str(port), "WENU_AWS_STALL_S": "0.5"}
        proc = start_task(run, tmp_path, extra)
        try:
            wait_for(lambda: run.records_done() == first_half, "the first half processed", [], timeout=180)
            before = run.checkpoints()
            proxy.hold()
            put_all(records[1::2], producer.put, Pacer("none"), tally=tally)
            wait_for(
                lambda: "not ready: processing/" in readyz(port)[1], "the exporter not ready", [], timeout=60
            )
            reason = readyz(port)[1].strip()
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=120)
            took = time.monotonic() - started
            left = task_processes(proc.pid, within_s=10)  # the shard process sees its daemon go and exits
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    print(f"KCL task: {reason!r}; SIGTERM during an S3 black hole: exit {code} after {took:.1f} s")
    assert took < 30 and code == 0
    assert not left, f"processes of the task outlived it: {left}"  # the shard process saw its daemon go
    assert run.checkpoints() == before  # the held batch was not checkpointed
    replay = start_worker(run.env | {"WENU_KINESIS_IDLE_EXIT_S": "3"}, tmp_path / "replay.log")
    assert replay.wait(timeout=180) == 0, (tmp_path / "replay.log").read_text()[-2000:]
    assert_effects(run, tally.result())
