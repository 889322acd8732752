"""`wenu-stream demo`: the whole platform on this machine in about two minutes.

1. start the local AWS stack on 127.0.0.1 (moto + kinesalite) and a PostgreSQL
   server (the warehouse) in a scratch folder,
2. make a fresh key ring; provision the stream (4 shards), tables, bucket and
   alarms topic, with an SQS queue subscribed to it; import the fleet's catalog,
3. start the API (``wenu-stream serve api``) and its backoffice,
4. simulate ~200 meters for a minute, paced in real time, with a few faults
   (corrupt bytes, unknown keys, tampering, duplicates, late readings) and
   anomalies that break each alarm rule type once, while both applications
   (processing, alarms) consume until the stream has been idle a while,
5. summarise: records, messages, duplicates and dead letters beside what the
   simulation says they must be; the alarm notifications beside what the rules
   call for; stats, the warehouse load and the API; one verdict line (exit 1
   when something differs),
6. stop everything and remove the scratch folder; with ``--keep`` everything
   stays up and the demo prints the lines to paste to explore it (README:
   "Explore the demo"); ``wenu-stream demo --stop DIR`` ends it.

Every long step shows progress: a moving status line on a terminal, a line
every 10 s elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from wenu_stream.config import Config, load_config
from wenu_stream.devtools.demo import explore, report, services
from wenu_stream.devtools.demo.consume import consume_until_idle
from wenu_stream.devtools.demo.progress import Progress
from wenu_stream.errors import ConfigError

STATS_SHOWN = [("acme-hq.em-000001.power", "15m"), ("acme-hq.em-000001.energy", "1h")]


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
    p.add_argument(
        "--keep",
        action="store_true",
        help="leave the stack, warehouse and API running and print what to paste",
    )
    p.add_argument("--stop", metavar="DIR", help="stop what `demo --keep` left running in DIR and remove DIR")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.stop:
        return explore.stop(Path(args.stop))
    for flag, value in (
        ("--devices", args.devices),
        ("--duration", args.duration),
        ("--interval", args.interval),
    ):
        if value <= 0:
            raise ConfigError(flag, f"{value} is not positive", "give a positive number")
    from wenu_stream.devtools.emulator.postgres import start_postgres, stop_postgres
    from wenu_stream.devtools.emulator.stack import StackSpec, start_stack, stop_stack
    from wenu_stream.log import configure_logging

    configure_logging("warning")
    progress = Progress(total=6)
    run_dir = Path(tempfile.mkdtemp(prefix="wenu-demo-"))
    progress.step(f"starting the local AWS stack and a warehouse in {run_dir}")
    with progress.timed("moto (DynamoDB, S3, SNS, SQS, KMS) and kinesalite on 127.0.0.1"):
        stack = start_stack(StackSpec(run_dir=str(run_dir / "stack")))
    saved = dict(os.environ)
    os.environ.update(stack.env())
    kept: dict[str, Any] = {"run_dir": str(run_dir), "stack_dir": str(run_dir / "stack")}
    warehouse = None
    api = None
    try:
        with progress.timed("PostgreSQL on 127.0.0.1 (installed with apt-get first if missing)"):
            warehouse = start_postgres()
        kept["postgres"] = msgspec.to_builtins(warehouse)
        code, api = _demo(args, run_dir, warehouse.dsn, progress, kept)
        return code
    finally:
        if args.keep:
            (run_dir / explore.STATE).write_text(json.dumps(kept, indent=1))
        else:
            if api is not None:
                api.terminate()
                api.wait(timeout=30)
            if warehouse is not None:
                stop_postgres(warehouse)
            stop_stack(stack)
            shutil.rmtree(run_dir, ignore_errors=True)
            os.environ.clear()
            os.environ.update(saved)


def _demo(
    args: argparse.Namespace, run_dir: Path, dsn: str, progress: Progress, kept: dict[str, Any]
) -> tuple[int, Any]:
    config = _config(run_dir, dsn)
    alarms = msgspec.structs.replace(
        config, app="alarms"
    )  # its own lease table (wenu-alarms) and checkpoints
    progress.step("provisioning and the catalog")
    _provision(config, progress)
    queue = services.subscribe_queue(alarms)
    progress.say(f"      an SQS queue subscribed to the alarms topic: {queue}")
    progress.say("      catalog: " + _import_catalog(config, args.devices, args.interval))
    progress.step("starting the API and the backoffice")
    with progress.timed("wenu-stream serve api"):
        api, url, token = services.start_api(config, run_dir)
    kept |= {"api_pid": api.pid, "api_url": url, "token": token, "keyring": config.keyring.file,
             "catalog_url": config.catalog.url, "warehouse_dsn": dsn,
             "api_secret": str(run_dir / "api-dev-secret")}  # fmt: skip
    progress.say(f"      {url} (OpenAPI {url}/schema/openapi.json), backoffice {url}/ui/")
    progress.step(
        f"simulating {args.devices} meters for {args.duration:.0f} s (real time) with faults and anomalies, "
        "consuming with both applications"
    )
    sim = services.start_simulator(
        config, run_dir, devices=args.devices, interval_s=args.interval, duration_s=args.duration
    )
    code, expected = asyncio.run(
        consume_until_idle(
            (config, alarms), sim, duration_s=args.duration, idle_s=args.idle_exit, progress=progress
        )
    )
    progress.step("summary")
    off = report.counts(config, expected, progress)
    off += report.warehouse(
        config, progress
    )  # before the alarms: the end of the run is judged from its readings
    off += report.alarms(alarms, services.received(queue), expected.get("expected_alarms", []), progress)
    report.stats(config, STATS_SHOWN, progress)
    report.api(url, token, progress)
    if off:
        progress.say("    verdict: NOT as expected: " + "; ".join(off))
    else:
        progress.say(
            "    verdict: every count and every notification is what the simulation and the rules call for"
        )
    if args.keep:
        progress.step("done: everything stays up for you to explore")
        explore.paste_lines(kept, progress)
    else:
        progress.step("cleaning up (to explore the stack afterwards instead: make demo ARGS=--keep)")
    return (code or (1 if off else 0)), api


def _config(run_dir: Path, dsn: str) -> Config:
    keyring = run_dir / "keyring.json"
    keyring.write_text(
        json.dumps({kid: base64.b64encode(os.urandom(32)).decode() for kid in ("fleet-a", "fleet-b")})
    )
    keyring.chmod(0o600)
    # Processing coalesces stats writes over 15 s (the emulator's DynamoDB takes a few hundred writes a second);
    # alarm notifications commit at once whatever the interval.
    return load_config(
        {},
        {
            "keyring.file": str(keyring),
            "kinesis.checkpoint_interval_s": 15.0,
            "log_level": "warning",
            "catalog.url": f"sqlite:///{run_dir / 'catalog.db'}",
            "warehouse.dsn": dsn,
        },
    )


def _provision(config: Config, progress: Progress) -> None:
    """Each resource as it is made (``aws.provision`` steps, one by one)."""
    from wenu_stream.aws.provision import STEPS

    for step in STEPS:
        started = time.monotonic()
        for what, state in step(config, {"shards": 4}).items():
            progress.say(f"      {what}: {state} ({time.monotonic() - started:.1f} s)")


def _import_catalog(config: Config, devices: int, interval_s: float) -> str:
    """Import the simulated fleet's catalog (companies, sites, devices, series, alarm rules) as a change set."""
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
        f"{sum(len(s.devices) for c in doc.companies for s in c.sites)} devices, "
        f"{len(doc.alarm_rules)} alarm rules imported (version {summary.version})"
    )
