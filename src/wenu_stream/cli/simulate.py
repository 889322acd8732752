"""`wenu-stream simulate`: realistic meters (optionally KPL-aggregated, with faults) into a Kinesis stream.

Pacing: by default records leave when their simulated time comes, --rate times
faster than real time (from --start, default now). --backfill starts
--duration seconds ago and sends what is already past at once, then follows
the clock. --no-pace sends everything as fast as possible. --dry-run prints
one JSON line {partition_key, data_b64} per record instead of putting.
The last line on stdout is a JSON summary: records put, messages, expected
outcomes (accepted, duplicates, rejected by reason) and faults applied; with
--anomalies (and --seed) also the alarm notifications the run must raise.
Bad arguments exit with code 2 before any record is put.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.cli.output import emit_one
from wenu_stream.errors import ConfigError

# SimulationConfig fields named in generate()'s errors -> the flag that sets them
_FLAGS = {"keyring": "--keyring", "key_ids": "--key-ids", "unknown_key_id": "--faults unknown_key"}


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "simulate",
        help="simulate meters into a stream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(p, "--stream", "--keyring", "--log-level")
    p.add_argument("--devices", type=int, default=10, help="number of devices (default 10)")
    p.add_argument(
        "--interval", type=float, default=1.0, help="seconds between readings of a device (default 1)"
    )
    p.add_argument("--duration", type=float, default=60.0, help="simulated seconds (default 60)")
    p.add_argument("--seed", type=int, default=None, help="reproducible readings, faults and nonces")
    p.add_argument(
        "--aggregate",
        type=int,
        nargs="?",
        const=100,
        default=0,
        metavar="N",
        help="pack up to N envelopes per KPL aggregated record (N default 100)",
    )
    p.add_argument("--faults", default="", help="NAME=P pairs, e.g. corrupt=0.01,duplicate=0.05,reorder=0.1")
    p.add_argument(
        "--key-ids", default="", help="comma-separated key ids to seal with (default: all of the ring)"
    )
    p.add_argument(
        "--msgpack-share", type=float, default=0.5, help="share of MessagePack devices (default 0.5)"
    )
    p.add_argument(
        "--start",
        default="now",
        help="simulated start: a time (ISO 8601, UTC without offset, now, -2h; default now)",
    )
    p.add_argument("--rate", type=float, default=1.0, help="simulated seconds per real second (default 1)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--no-pace", action="store_true", help="put as fast as possible")
    pace.add_argument("--backfill", action="store_true", help="start --duration ago; send the past at once")
    p.add_argument(
        "--anomalies",
        action="store_true",
        help="a few devices break each alarm rule of the fleet once; the summary lists the expected alarms",
    )
    p.add_argument("--catalog-out", default=None, help="write the fleet's catalog document to this file")
    p.add_argument("--dry-run", action="store_true", help="print records as JSON lines instead of putting")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate every argument, then generate and put (or print) the records; print the summary."""
    from wenu_stream.devtools.simulate import Tally, fleet_catalog, generate
    from wenu_stream.devtools.simulate.keyfile import read_key_file
    from wenu_stream.log import configure_logging, get_logger

    config = config_from(args)
    sim = simulation_config(args, now_ms=int(time.time() * 1000))
    if not config.keyring.file:
        raise ConfigError("--keyring", "no key ring given", "pass --keyring FILE or set WENU_KEYRING_FILE")
    producer = None if args.dry_run else _producer(config.kinesis.stream)
    if producer is not None and sim.aggregate:
        sim = msgspec.structs.replace(sim, shard_ranges=producer.open_shard_ranges())
    try:
        records = generate(sim, read_key_file(config.keyring.file))  # checks the keys against sim, eagerly
    except ConfigError as exc:
        raise ConfigError(_FLAGS.get(exc.field, exc.field), exc.problem, exc.fix) from None
    configure_logging(config.log_level)
    if args.catalog_out:
        Path(args.catalog_out).write_text(json.dumps(fleet_catalog(sim), indent=1) + "\n", encoding="utf-8")
    log = get_logger("wenu.simulate").bind(stream=config.kinesis.stream, devices=sim.devices)
    log.info("simulation_started", start_ms=sim.start_ms, duration_s=sim.duration_s, seed=sim.seed)
    tally, began = Tally(), time.monotonic()
    if producer is None:
        from wenu_stream.devtools.simulate.producer import write_lines

        write_lines(records, sys.stdout, tally)
        put: dict[str, Any] = {"records_put": 0}
    else:
        from wenu_stream.devtools.simulate.producer import put_all

        put_all(records, producer.put, _pacer(args, sim.start_ms), tally=tally)
        put = msgspec.to_builtins(producer.stats)
    summary = {
        "stream": config.kinesis.stream,
        "dry_run": args.dry_run,
        **put,
        **msgspec.to_builtins(tally.result()),
        "seed": sim.seed,
        "start_ms": sim.start_ms,
        "elapsed_s": round(time.monotonic() - began, 3),
    }
    if sim.anomalies and sim.seed is not None:
        from wenu_stream.devtools.simulate.generator import expected_alarms

        summary["expected_alarms"] = msgspec.to_builtins(expected_alarms(sim))
    log.info("simulation_finished", **{k: v for k, v in summary.items() if not isinstance(v, (dict, list))})
    emit_one(summary, "jsonl" if args.output == "table" else args.output)  # the last line: the summary
    return 0


def simulation_config(args: argparse.Namespace, now_ms: int) -> Any:
    """Build the ``SimulationConfig`` from the flags, or raise ``ConfigError`` naming the flag."""
    from wenu_stream.devtools.simulate import FaultRates, SimulationConfig, parse_faults

    _check_range("--devices", args.devices, 1, 1_000_000, "a device count from 1 to 1000000")
    _check_range("--interval", args.interval, 0.001, 86_400, "seconds from 0.001 to 86400")
    _check_range("--duration", args.duration, 0.001, 366 * 86_400, "seconds, more than 0 and at most a year")
    _check_range("--aggregate", args.aggregate, 0, 10_000, "0 (off) or up to 10000 envelopes per record")
    _check_range("--msgpack-share", args.msgpack_share, 0.0, 1.0, "a share from 0 to 1")
    _check_range("--rate", args.rate, 1e-6, 1e9, "a positive speed factor, e.g. 10")
    faults = parse_faults(args.faults) if args.faults else FaultRates()
    start_ms = now_ms - round(args.duration * 1000) if args.backfill else _start_ms(args.start, now_ms)
    key_ids = tuple(k.strip() for k in args.key_ids.split(",") if k.strip())
    return SimulationConfig(
        devices=args.devices,
        interval_s=args.interval,
        duration_s=args.duration,
        start_ms=start_ms,
        seed=args.seed,
        aggregate=args.aggregate,
        msgpack_share=args.msgpack_share,
        key_ids=key_ids,
        faults=faults,
        anomalies=args.anomalies,
    )


def _check_range(flag: str, value: float, low: float, high: float, fix: str) -> None:
    if not low <= value <= high:
        raise ConfigError(flag, f"{value} is out of range", f"give {fix}")


def _start_ms(text: str, now_ms: int) -> int:
    from wenu_stream.timeparse import parse_ms

    return parse_ms(text, now_ms=now_ms, field="--start")


def _producer(stream: str) -> Any:
    from botocore.exceptions import BotoCoreError, NoRegionError

    from wenu_stream.devtools.simulate.producer import KinesisProducer

    try:
        producer = KinesisProducer(stream)
        producer.check_stream()
    except NoRegionError:
        raise ConfigError(
            "AWS_REGION", "no AWS region configured", "set AWS_REGION (or AWS_DEFAULT_REGION)"
        ) from None
    except BotoCoreError as exc:
        raise ConfigError(
            "--stream", f"cannot reach Kinesis: {exc}", "check AWS_ENDPOINT_URL_KINESIS and credentials"
        ) from None
    return producer


def _pacer(args: argparse.Namespace, start_ms: int) -> Any:
    from wenu_stream.devtools.simulate.producer import Pacer

    if args.no_pace:
        return Pacer("none")
    if args.backfill:
        return Pacer("absolute")
    return Pacer("relative", start_ms=start_ms, rate=args.rate)
