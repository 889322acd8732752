"""`wenu-stream demo`: the whole platform on this machine in about two minutes.

1. start the local AWS stack on 127.0.0.1 (moto + kinesalite) in a scratch folder,
2. make a fresh key ring and provision the stream (4 shards), tables, bucket
   and the alarms topic, with an SQS queue subscribed to it,
3. simulate ~200 meters for a minute, paced in real time, with a few faults
   (corrupt bytes, unknown keys, tampering, duplicates, late readings) and
   anomalies that break each alarm rule type once,
4. start the API (``wenu-stream serve api``) next to them and print its URL
   and an admin token, then run both applications (native driver, one event
   loop, each with its own lease table and checkpoints) until the stream has
   been idle a while,
5. print a summary: records read, accepted, dead-lettered by reason,
   duplicates, checkpoints, throughput, and the simulator's expected outcome
   beside it; the alarm notifications that reached the queue beside the ones
   the anomalies must raise, and the alarms still firing; then where to look next,
6. stop the API and the stack and remove the scratch folder (unless --keep:
   then the API keeps serving the demo's data until its process is stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import operator
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from wenu_stream.config import Config, load_config
from wenu_stream.devtools.emulator.stack import StackSpec, start_stack, stop_stack
from wenu_stream.errors import ConfigError

FAULTS = (
    "corrupt=0.004,unknown_key=0.003,tamper=0.003,malformed=0.002,duplicate=0.02,reorder=0.05,"
    "reorder_bound_s=10,duplicate_delay_s=3"
)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "demo",
        help="run the platform end to end on a local stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--devices", type=int, default=200, help="simulated meters (default 200)")
    p.add_argument(
        "--duration", type=float, default=60.0, help="simulated seconds, paced in real time (default 60)"
    )
    p.add_argument(
        "--interval", type=float, default=5.0, help="seconds between readings of a meter (default 5)"
    )
    p.add_argument(
        "--idle-exit", type=float, default=8.0, help="stop consuming after this idle time (default 8 s)"
    )
    p.add_argument("--keep", action="store_true", help="keep the stack running and the scratch folder")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    for flag, value in (
        ("--devices", args.devices),
        ("--duration", args.duration),
        ("--interval", args.interval),
    ):
        if value <= 0:
            raise ConfigError(flag, f"{value} is not positive", "give a positive number")
    from wenu_stream.log import configure_logging

    configure_logging("warning")
    run_dir = Path(tempfile.mkdtemp(prefix="wenu-demo-"))
    say(f"[1/6] starting the local AWS stack in {run_dir} (moto + kinesalite on 127.0.0.1)")
    stack = start_stack(StackSpec(run_dir=str(run_dir / "stack")))
    saved = dict(os.environ)
    os.environ.update(stack.env())
    from wenu_stream.devtools.emulator.postgres import start_postgres, stop_postgres

    warehouse = None
    try:
        say("      and a PostgreSQL server on 127.0.0.1 as the local warehouse")
        warehouse = start_postgres()
        return _demo(args, run_dir, warehouse.dsn)
    finally:
        if args.keep:
            say(
                f"\nkept: the stack runs on; `wenu-stream emulator stop --run-dir {run_dir / 'stack'}` stops it; "
                f"the warehouse is at {warehouse.dsn if warehouse else '-'}."
            )
        else:
            if warehouse is not None:
                stop_postgres(warehouse)
            stop_stack(stack)
            shutil.rmtree(run_dir, ignore_errors=True)
            os.environ.clear()
            os.environ.update(saved)


def _demo(args: argparse.Namespace, run_dir: Path, dsn: str) -> int:
    keyring = run_dir / "keyring.json"
    keyring.write_text(
        json.dumps({kid: base64.b64encode(os.urandom(32)).decode() for kid in ("fleet-a", "fleet-b")})
    )
    keyring.chmod(0o600)
    # Processing coalesces stats writes over 15 s (the emulator's DynamoDB takes a few hundred writes a second);
    # alarm notifications commit at once whatever the interval.
    config = load_config(
        {},
        {
            "keyring.file": str(keyring),
            "kinesis.checkpoint_interval_s": 15.0,
            "log_level": "warning",
            "catalog.url": f"sqlite:///{run_dir / 'catalog.db'}",
            "warehouse.dsn": dsn,
        },
    )
    from wenu_stream.aws.provision import provision

    say("[2/6] provisioning: " + ", ".join(f"{k} ({v})" for k, v in provision(config, shards=4).items()))
    alarms = msgspec.structs.replace(
        config, app="alarms"
    )  # its own lease table (wenu-alarms) and checkpoints
    queue = subscribe_queue(alarms)
    say(f"      and an SQS queue subscribed to the alarms topic: {queue}")
    say("      catalog: " + _import_catalog(config, args.devices, args.interval))
    say(f"[3/6] simulating {args.devices} meters for {args.duration:.0f} s, faults: {FAULTS}, with anomalies")
    sim = _start_simulator(args, config, run_dir)
    api, url, token = _start_api(config, run_dir)
    say(f"[4/6] the API serves at {url} (OpenAPI: {url}/schema/openapi.json); an admin token for it:")
    say(f"      export WENU_TOKEN={token}")
    say(f"      the backoffice: {url}/ui/ (sign in by pasting that token)")
    say(f'      curl -H "Authorization: Bearer $WENU_TOKEN" {url}/api/v1/alarms?state=firing')
    say("      consuming with both applications (processing, alarms) until the stream is idle ...")
    try:
        started = time.monotonic()
        code = asyncio.run(_consume_until_idle(config, sim, args.idle_exit, alarms))
        elapsed = time.monotonic() - started
        expected = _simulator_summary(sim)
        say("[5/6] summary")
        _summary(config, expected, elapsed)
        _stats(config)
        _warehouse(config)
        _alarms_summary(queue, expected.get("expected_alarms", []))
        _api_summary(url, token)
    finally:
        if not args.keep:
            api.terminate()
            api.wait(timeout=30)
    if args.keep:
        say(
            f"[6/6] done; the API and the backoffice ({url}/ui/) keep serving (process {api.pid}: `kill {api.pid}` stops it)"
        )
    else:
        say("[6/6] cleaning up")
    return code


def _start_api(config: Config, run_dir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """Start `wenu-stream serve api` on a free loopback port over the demo's catalog and stack; URL and token."""
    import socket

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
    proc = subprocess.Popen(
        [sys.executable, "-m", "wenu_stream", "serve", "api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(run_dir / "api.log", "wb"),  # noqa: SIM115 - the child keeps writing it
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise ConfigError(
                "wenu-stream serve api",
                f"the API did not start (see {run_dir / 'api.log'})",
                "run `wenu-stream serve api` by hand to see why",
            )
        time.sleep(0.1)
    api = config.api
    token = DevTokens.from_file(secret).mint(
        subject="demo-admin",
        role="admin",
        company=None,
        now_s=int(time.time()),
        ttl_s=12 * 3600,
        roles_claim=api.roles_claim,
        company_claim=api.company_claim,
    )
    return proc, url, token


def _api_summary(url: str, token: str) -> None:
    """What the API says about the same run: versions of the catalog and firing alarms."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    versions = httpx.get(f"{url}/api/v1/catalog/versions", headers=headers, timeout=30).json()["items"]
    firing = httpx.get(f"{url}/api/v1/alarms", params={"state": "firing"}, headers=headers, timeout=30).json()
    say(
        f"    API {url}: catalog version {versions[0]['version']} by {versions[0]['author']} "
        f"({versions[0]['reason']}); {len(firing['items'])} firing alarm instance(s) at /api/v1/alarms?state=firing"
    )


async def _consume_until_idle(
    config: Config, sim: subprocess.Popen[bytes], idle_s: float, alarms: Config
) -> int:
    """Run both applications while the simulator runs; each stops once caught up with the stream (plus ``idle_s``)."""
    from wenu_stream.bootstrap import Runtime
    from wenu_stream.cli.run import consume

    runtimes = (Runtime(config), Runtime(alarms))

    async def watch(rt: Runtime, stop: asyncio.Event) -> None:
        """Each application stops once the simulator is done and its checkpoints stand at the tip of the stream:
        alarms does not wait for processing (it would otherwise see the whole fleet fall silent)."""
        while True:
            await asyncio.sleep(1.0)
            if sim.poll() is not None and await asyncio.to_thread(caught_up, rt.config):
                await asyncio.sleep(idle_s)
                stop.set()
                return

    async def run(rt: Runtime) -> int:
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch(rt, stop))
        try:
            return await consume(rt.config, stop=stop, runtime=rt)
        finally:
            watcher.cancel()

    return max(await asyncio.gather(*(run(rt) for rt in runtimes)))


def caught_up(config: Config) -> bool:
    """Whether every shard's checkpoint of ``config.app`` stands at the tip of the stream (all committed)."""
    import boto3

    from wenu_stream.drivers.native.leases import read_leases

    kinesis = boto3.client("kinesis")
    checkpoints = {lease.lease_key: lease.checkpoint for lease in read_leases(config.lease_table)}
    for shard in kinesis.list_shards(StreamName=config.kinesis.stream)["Shards"]:
        checkpoint = checkpoints.get(shard["ShardId"], "TRIM_HORIZON")
        if checkpoint == "SHARD_END":
            continue
        kind: dict[str, Any] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": checkpoint}
            if checkpoint.isdigit()
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator = kinesis.get_shard_iterator(
            StreamName=config.kinesis.stream, ShardId=shard["ShardId"], **kind
        )["ShardIterator"]
        if kinesis.get_records(ShardIterator=iterator, Limit=1)["Records"]:
            return False
    return True


def _records_seen(runtime: Any) -> float:
    total = 0.0
    for metric in runtime.registry.collect():
        if metric.name == "wenu_records":
            total += sum(s.value for s in metric.samples if s.name == "wenu_records_total")
    return total


def _import_catalog(config: Config, devices: int, interval_s: float) -> str:
    """Import the simulated fleet's catalog (companies, sites, devices, series, alarm rules)."""
    from wenu_stream.catalog.document import validate
    from wenu_stream.catalog.store import CatalogStore
    from wenu_stream.cli.catalog import import_as_change_set
    from wenu_stream.devtools.simulate import SimulationConfig, fleet_catalog

    checked = validate(fleet_catalog(SimulationConfig(devices=devices, interval_s=interval_s)))
    assert checked.document is not None, checked.problems
    with CatalogStore(config.catalog.url) as store:
        summary = import_as_change_set(store, checked.document, author="demo", reason="demo fleet catalog")
    doc = checked.document
    return (
        f"{len(doc.companies)} companies, {sum(len(c.sites) for c in doc.companies)} sites, "
        f"{len(doc.alarm_rules)} alarm rules imported (version {summary.version})"
    )


def _start_simulator(args: argparse.Namespace, config: Config, run_dir: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "wenu_stream",
        "simulate",
        "--stream",
        config.kinesis.stream,
        "--keyring",
        config.keyring.file,
        "--devices",
        str(args.devices),
        "--interval",
        str(args.interval),
        "--duration",
        str(args.duration),
        "--seed",
        "7",
        "--faults",
        FAULTS,
        "--aggregate",
        "20",
        "--anomalies",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(run_dir / "simulate.log", "wb"))


def _simulator_summary(sim: subprocess.Popen[bytes]) -> dict[str, Any]:
    out, _ = sim.communicate(timeout=600)
    lines = out.decode().strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def _summary(config: Config, expected: dict[str, Any], elapsed: float) -> None:
    from wenu_stream.drivers.native.leases import read_leases
    from wenu_stream.ops.report import dead_letter_counts, shard_totals, sum_totals

    totals = sum_totals(shard_totals(config))
    leases = read_leases(config.lease_table)
    rows = [
        ("Kinesis records read", totals.records, expected.get("records")),
        ("messages accepted", totals.accepted, expected.get("accepted")),
        ("duplicates dropped", totals.duplicates + totals.stale, expected.get("duplicates")),
        ("dead-lettered", sum(totals.rejected.values()), sum(expected.get("rejected", {}).values())),
    ]
    say(f"    {'':28}{'consumer':>10}{'simulator expected':>22}")
    for name, got, want in rows:
        say(f"    {name:28}{got:>10}{'' if want is None else want:>22}")
    for reason, n in totals.rejected.items():
        say(f"      {reason:26}{n:>10}{expected.get('rejected', {}).get(reason, 0):>22}")
    say(f"    dead letters in S3 by reason: {json.dumps(dead_letter_counts(config))}")
    say("    checkpoints: " + ", ".join(f"{lease.lease_key}={lease.checkpoint[-12:]}" for lease in leases))
    users = totals.accepted + totals.duplicates + totals.stale + sum(totals.rejected.values())
    say(
        f"    user records handled: {users} in {elapsed:.1f} s of consuming ({users / max(elapsed, 1e-9):.0f}/s; the "
        "simulator paces arrivals in real time, so this is the arrival rate: `make bench` measures capacity)"
    )
    say(
        "    where to look next: `wenu-stream dlq list --reason auth_failed`, `wenu-stream records decode`, "
        "`wenu-stream check-config`, README.md"
    )


def _stats(config: Config) -> None:
    """A few Company Stats rows, as `wenu-stream stats query` shows them."""
    from wenu_stream.cli.output import emit
    from wenu_stream.cli.stats import columns, fetch, row

    now_ms = int(time.time() * 1000)
    for series, width in (("acme-hq.em-000001.power", "15m"), ("acme-hq.em-000001.energy", "1h")):
        rows = [
            row(item)
            for item in fetch(
                config.stats.table, series, width, now_ms - 86_400_000, now_ms + 3_600_000, now_ms // 1000
            )
        ]
        say(f"    stats: `wenu-stream stats query --series {series} --window {width} --from ... --to ...`")
        sys.stdout.flush()
        emit(rows[-3:], "table", columns(rows, "", "UTC"))


def _warehouse(config: Config) -> None:
    """Load the staged readings into the local PostgreSQL warehouse, exactly once, and count them."""
    from wenu_stream.cli.warehouse import _run
    from wenu_stream.warehouse.loader import load_pending, status

    loaded = _run(
        config, lambda s3, t: load_pending(s3, t, bucket=config.sinks.bucket, config=config.warehouse)
    )
    again = _run(
        config, lambda s3, t: load_pending(s3, t, bucket=config.sinks.bucket, config=config.warehouse)
    )
    counts = _run(config, lambda s3, t: status(s3, t, bucket=config.sinks.bucket, config=config.warehouse))
    said = msgspec.to_builtins(loaded)
    say(
        f"    warehouse: {len(said.get('manifests', []))} manifest(s) loaded into PostgreSQL; "
        f"a second load changed nothing ({sum(m.get('rows_inserted', 0) for m in msgspec.to_builtins(again).get('manifests', []))} rows); "
        f"status: {json.dumps(counts)}"
    )


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


def _received(url: str) -> list[dict[str, Any]]:
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


def _alarms_summary(queue: str, expected: list[dict[str, Any]]) -> None:
    """Print the notifications that reached the queue beside the expected ones, then the alarms still firing."""
    got = sorted(_received(queue), key=lambda b: (b["at"], b["rule"]))
    key = operator.itemgetter("rule", "series", "state", "transition_id")
    same = sorted(map(key, got)) == sorted(map(key, expected))
    say(
        f"    alarm notifications received from the SQS queue: {len(got)} "
        f"({'exactly the' if same else 'NOT the'} {len(expected)} the anomalies must raise)"
    )
    say(f"      {'rule':19}{'series':36}{'severity':10}{'state':8}at (reading time, UTC)")
    for b in got:
        at = time.strftime("%H:%M:%S", time.gmtime(b["at"] / 1000)) + f".{b['at'] % 1000:03d}"
        say(f"      {b['rule']:19}{b['series']:36}{b['severity']:10}{b['state']:8}{at}")
    listing = subprocess.run(
        [sys.executable, "-m", "wenu_stream", "alarms", "list", "--state", "firing"],
        capture_output=True,
        text=True,
        check=False,
    )
    say("    `wenu-stream alarms list --state firing`:")
    for line in (listing.stdout or listing.stderr).strip().splitlines():
        say(f"      {line}")


def say(text: str) -> None:
    print(text, flush=True)
