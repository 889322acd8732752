"""`wenu-stream demo`: the whole platform on this machine in about two minutes.

1. start the local AWS stack on 127.0.0.1 (moto + kinesalite) in a scratch folder,
2. make a fresh key ring and provision the stream (4 shards), tables and bucket,
3. simulate ~200 meters for a minute, paced in real time, with a few faults
   (corrupt bytes, unknown keys, tampering, duplicates, late readings),
4. run the consumer (native driver) until the stream has been idle a while,
5. print a summary: records read, accepted, dead-lettered by reason,
   duplicates, checkpoints, throughput, and the simulator's expected outcome
   beside it; then where to look next,
6. stop the stack and remove the scratch folder (unless --keep).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import msgspec
from pathlib import Path
from typing import Any


from wenu_stream.config import Config, load_config
from wenu_stream.emulator.stack import StackSpec, start_stack, stop_stack
from wenu_stream.errors import ConfigError

FAULTS = ("corrupt=0.004,unknown_key=0.003,tamper=0.003,malformed=0.002,duplicate=0.02,reorder=0.05,"
          "reorder_bound_s=10,duplicate_delay_s=3")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("demo", help="run the platform end to end on a local stack", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=200, help="simulated meters (default 200)")
    p.add_argument("--duration", type=float, default=60.0, help="simulated seconds, paced in real time (default 60)")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between readings of a meter (default 10)")
    p.add_argument("--idle-exit", type=float, default=8.0, help="stop consuming after this idle time (default 8 s)")
    p.add_argument("--keep", action="store_true", help="keep the stack running and the scratch folder")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    for flag, value in (("--devices", args.devices), ("--duration", args.duration), ("--interval", args.interval)):
        if value <= 0:
            raise ConfigError(flag, f"{value} is not positive", "give a positive number")
    from wenu_stream.log import configure_logging

    configure_logging("warning")
    run_dir = Path(tempfile.mkdtemp(prefix="wenu-demo-"))
    say(f"[1/6] starting the local AWS stack in {run_dir} (moto + kinesalite on 127.0.0.1)")
    stack = start_stack(StackSpec(run_dir=str(run_dir / "stack")))
    saved = dict(os.environ)
    os.environ.update(stack.env())
    from wenu_stream.emulator.postgres import start_postgres, stop_postgres

    warehouse = None
    try:
        say("      and a PostgreSQL server on 127.0.0.1 as the local warehouse")
        warehouse = start_postgres()
        return _demo(args, run_dir, warehouse.dsn)
    finally:
        if args.keep:
            say(f"\nkept: the stack runs on; `wenu-stream emulator stop --run-dir {run_dir / 'stack'}` stops it; "
                f"the warehouse is at {warehouse.dsn if warehouse else '-'}.")
        else:
            if warehouse is not None:
                stop_postgres(warehouse)
            stop_stack(stack)
            shutil.rmtree(run_dir, ignore_errors=True)
            os.environ.clear()
            os.environ.update(saved)


def _demo(args: argparse.Namespace, run_dir: Path, dsn: str) -> int:
    keyring = run_dir / "keyring.json"
    keyring.write_text(json.dumps({kid: base64.b64encode(os.urandom(32)).decode() for kid in ("fleet-a", "fleet-b")}))
    keyring.chmod(0o600)
    config = load_config({}, {"keyring.file": str(keyring), "kinesis.checkpoint_interval_s": 2.0, "log_level": "warning",
                              "catalog.url": f"sqlite:///{run_dir / 'catalog.db'}", "warehouse.dsn": dsn})
    from wenu_stream.provision import provision

    say("[2/6] provisioning: " + ", ".join(f"{k} ({v})" for k, v in provision(config, shards=4).items()))
    say("      catalog: " + _import_catalog(config, args.devices))
    say(f"[3/6] simulating {args.devices} meters for {args.duration:.0f} s, faults: {FAULTS}")
    sim = _start_simulator(args, config, run_dir)
    say("[4/6] consuming with the native driver until the stream is idle ...")
    started = time.monotonic()
    code = asyncio.run(_consume_until_idle(config, sim, args.idle_exit))
    elapsed = time.monotonic() - started
    expected = _simulator_summary(sim)
    say("[5/6] summary")
    _summary(config, expected, elapsed)
    _warehouse(config)
    say("[6/6] cleaning up" if not args.keep else "[6/6] done")
    return code


async def _consume_until_idle(config: Config, sim: subprocess.Popen[bytes], idle_s: float) -> int:
    """Consume while the simulator runs, then until no record arrived for ``idle_s`` seconds."""
    from wenu_stream.commands.run import consume
    from wenu_stream.runtime import Runtime

    runtime, stop = Runtime(config), asyncio.Event()

    async def watch() -> None:
        last, quiet_since = -1.0, time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            seen = _records_seen(runtime)
            if seen != last:
                last, quiet_since = seen, time.monotonic()
            if sim.poll() is not None and time.monotonic() - quiet_since >= idle_s:
                stop.set()
                return

    watcher = asyncio.create_task(watch())
    try:
        return await consume(config, stop=stop, runtime=runtime)
    finally:
        watcher.cancel()


def _records_seen(runtime: Any) -> float:
    total = 0.0
    for metric in runtime.registry.collect():
        if metric.name == "wenu_records":
            total += sum(s.value for s in metric.samples if s.name == "wenu_records_total")
    return total


def _import_catalog(config: Config, devices: int) -> str:
    """Import the simulated fleet's catalog (companies, sites, devices, series, alarm rules)."""
    from wenu_stream.catalog.document import validate
    from wenu_stream.catalog.store import CatalogStore
    from wenu_stream.simulate import SimulationConfig, fleet_catalog

    checked = validate(fleet_catalog(SimulationConfig(devices=devices)))
    assert checked.document is not None, checked.problems
    with CatalogStore(config.catalog.url) as store:
        summary = store.import_document(checked.document)
    doc = checked.document
    return (f"{len(doc.companies)} companies, {sum(len(c.sites) for c in doc.companies)} sites, "
            f"{len(doc.alarm_rules)} alarm rules imported (version {summary.version})")


def _start_simulator(args: argparse.Namespace, config: Config, run_dir: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "wenu_stream", "simulate", "--stream", config.kinesis.stream,
           "--keyring", config.keyring.file, "--devices", str(args.devices), "--interval", str(args.interval),
           "--duration", str(args.duration), "--seed", "7", "--faults", FAULTS, "--aggregate", "20"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(run_dir / "simulate.log", "wb"))  # noqa: SIM115


def _simulator_summary(sim: subprocess.Popen[bytes]) -> dict[str, Any]:
    out, _ = sim.communicate(timeout=600)
    lines = out.decode().strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def _summary(config: Config, expected: dict[str, Any], elapsed: float) -> None:
    from wenu_stream.driver.leases import read_leases
    from wenu_stream.report import dead_letter_counts, shard_totals, sum_totals

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
    say(f"    checkpoints: " + ", ".join(f"{lease.lease_key}={lease.checkpoint[-12:]}" for lease in leases))
    users = totals.accepted + totals.duplicates + totals.stale + sum(totals.rejected.values())
    say(f"    user records handled: {users} in {elapsed:.1f} s of consuming ({users / max(elapsed, 1e-9):.0f}/s; the "
        "simulator paces arrivals in real time, so this is the arrival rate: `make bench` measures capacity)")
    say("    where to look next: `wenu-stream dlq list --reason auth_failed`, `wenu-stream records decode`, "
        "`wenu-stream check-config`, README.md")


def _warehouse(config: Config) -> None:
    """Load the staged readings into the local PostgreSQL warehouse, exactly once, and count them."""
    from wenu_stream.commands.warehouse import _run
    from wenu_stream.warehouse.loader import load_pending, status

    loaded = _run(config, lambda s3, t: load_pending(s3, t, bucket=config.sinks.bucket, config=config.warehouse))
    again = _run(config, lambda s3, t: load_pending(s3, t, bucket=config.sinks.bucket, config=config.warehouse))
    counts = _run(config, lambda s3, t: status(s3, t, bucket=config.sinks.bucket, config=config.warehouse))
    said = msgspec.to_builtins(loaded)
    say(f"    warehouse: {len(said.get('manifests', []))} manifest(s) loaded into PostgreSQL; "
        f"a second load changed nothing ({sum(m.get('rows_inserted', 0) for m in msgspec.to_builtins(again).get('manifests', []))} rows); "
        f"status: {json.dumps(counts)}")


def say(text: str) -> None:
    print(text, flush=True)



