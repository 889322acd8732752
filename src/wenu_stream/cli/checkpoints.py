"""`wenu-stream checkpoints list|reset`: inspect and move an application's checkpoints (KCL or native lease table).

reset --to trim-horizon | latest | timestamp TIME | sequence N
  trim-horizon  replay everything the stream still holds;
  latest        skip to the tip (records not yet processed are never processed);
  timestamp T   resume, per shard, at the first record that arrived at or after T
                (T within the stream's retention, not in the future; ISO 8601, without
                an offset taken as UTC, or relative: 2h, -90m; see wenu_stream.timeparse);
  sequence N    set the checkpoint of one shard (--shard) to N verbatim, as the KCL
                does: N counts as processed and processing resumes after it.

Safe by default: the reset reads the lease table twice, one failover time
apart (WENU_LEASE_FAILOVER_MS, or --failover-ms for a KCL application with
another failoverTimeMillis); if a lease counter moved, a worker is alive and
the reset is refused (exit 3) until the workers are stopped: scale the ECS
service to 0, or stop `wenu-stream run`. Each write is conditional on the
lease counter read in the plan; the lease is left without owner, so the next
worker takes it at once and starts from the new checkpoint.

--force writes even while workers hold the leases (no liveness wait). Risks:
the holder loses the lease at its next renewal or checkpoint and stops the
shard without checkpointing, but a batch it is processing still finishes its
sink writes; with the KCL a record processor may checkpoint once more before
it notices, moving the checkpoint past the reset (check with `checkpoints
list` and reset again). Prefer stopping the workers.

--rebuild writes a rebuild marker per shard (state table) before the lease:
the replay then recomputes the dedup memory, totals, stats windows and alarm
state from the replayed records instead of skipping what was already applied
(see wenu_stream.ingest.rebuild). Without it, sinks skip what they already hold.

Exit codes: 0 done (or dry run), 1 some rows moved during the write (they were
left unchanged: run again), 2 bad arguments, unknown app/shard/sequence or a
timestamp outside retention (nothing written), 3 refused: live workers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

import boto3
import msgspec

from wenu_stream.aws.state import next_generation, write_marker
from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.cli.output import emit
from wenu_stream.drivers.native.leases import read_leases
from wenu_stream.errors import ConfigError
from wenu_stream.ops import checkpoints as ops
from wenu_stream.ops.positions import Lag

EXIT_LIVE = 3


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "checkpoints",
        help="list or reset an application's checkpoints",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="checkpoints_command", required=True)
    ls = sub.add_parser("list", help="per shard: owner, counter, checkpoint, parents, lag behind the tip")
    add_config_flags(ls, "--app", "--stream")
    ls.add_argument(
        "--count",
        action="store_true",
        help="also count the records behind the tip (reads them: competes with the consumers)",
    )
    ls.add_argument("--no-lag", action="store_true", help="do not read the stream")
    ls.set_defaults(handler=list_checkpoints)
    rs = sub.add_parser(
        "reset",
        help="move checkpoints to replay or skip records",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(rs, "--app", "--stream")
    rs.add_argument(
        "--to",
        nargs="+",
        required=True,
        metavar="TARGET",
        help="trim-horizon | latest | timestamp TIME | sequence N (TIME: ISO 8601, UTC without offset, or 2h ago)",
    )
    rs.add_argument("--shard", action="append", default=[], help="only this shard (repeatable; default: all)")
    rs.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    rs.add_argument(
        "--force", action="store_true", help="write even while workers hold the leases (risks: --help)"
    )
    rs.add_argument(
        "--rebuild", action="store_true", help="recompute results during the replay instead of skipping"
    )
    rs.add_argument(
        "--failover-ms",
        type=int,
        default=None,
        help="liveness wait (default: the lease failover time) [env: WENU_LEASE_FAILOVER_MS]",
    )
    rs.set_defaults(handler=reset)


def list_checkpoints(args: argparse.Namespace) -> int:
    config = config_from(args)
    rows = ops.list_status(
        boto3.client("dynamodb"),
        boto3.client("kinesis"),
        config.lease_table,
        config.kinesis.stream,
        now_ms=int(time.time() * 1000),
        lag=not args.no_lag,
        count=args.count,
    )
    if args.output != "table":
        emit((msgspec.to_builtins(row) for row in rows), args.output)
        return 0
    emit(
        [
            {
                "shard_id": row.shard_id,
                "owner": row.lease_owner or "-",
                "counter": row.lease_counter,
                "checkpoint": row.checkpoint
                + (f":{row.sub_sequence_number}" if row.sub_sequence_number else ""),
                "behind": describe_lag(row.lag),
                "parents": ",".join(row.parent_shard_ids) or "-",
            }
            for row in rows
        ],
        "table",
    )
    return 0


def describe_lag(lag: Lag | None) -> str:
    """``"caught up"``, or the age of the oldest unprocessed record and what else is known."""
    if lag is None:
        return "?"
    parts = []
    if lag.next_record_age_ms is None:
        parts.append("caught up")
    else:
        parts.append(f"oldest {lag.next_record_age_ms / 1000:.1f}s")
    if lag.millis_behind_latest:
        parts.append(f"{lag.millis_behind_latest}ms")
    if lag.records_behind is not None:
        parts.append(f"{lag.records_behind}{'+' if lag.capped else ''} rec")
    return " ".join(parts)


def reset(args: argparse.Namespace) -> int:
    config = config_from(args)
    now = dt.datetime.now(dt.UTC)
    if len(args.to) > 2:
        raise ConfigError("--to", f"too many values {args.to}", "use --to KIND [VALUE]")
    target = ops.parse_target(args.to[0], args.to[1] if len(args.to) > 1 else None, now=now)
    failover_ms = config.lease.failover_ms if args.failover_ms is None else args.failover_ms
    if failover_ms < 0:
        raise ConfigError("--failover-ms", "negative", "give the lease failover time in milliseconds")
    ddb, kinesis = boto3.client("dynamodb"), boto3.client("kinesis")
    plan = ops.plan_reset(
        ddb,
        kinesis,
        table=config.lease_table,
        stream=config.kinesis.stream,
        target=target,
        shards=args.shard,
        failover_s=0 if args.force else failover_ms / 1000,
        now=now,
    )
    print_plan(plan)
    if plan.live and not args.force:
        sys.stderr.write(
            f"wenu-stream: refused: live workers hold {', '.join(plan.live)} (lease counters moved "
            f"within {failover_ms} ms). Fix: {ops.STOP_HINT}\n"
        )
        return EXIT_LIVE
    if args.dry_run:
        sys.stdout.write("dry run: nothing written\n")
        return 0
    if args.rebuild:
        every = [lease.lease_key for lease in read_leases(config.lease_table, ddb)]
        generation = next_generation(ddb, config.sinks.state_table, config.app, config.kinesis.stream, every)
        for step in plan.steps:
            write_marker(
                ddb,
                config.sinks.state_table,
                app=config.app,
                stream=config.kinesis.stream,
                shard_id=step.shard_id,
                from_checkpoint=step.new_checkpoint,
                target=target.describe(),
                now=now,
                generation=generation,
            )
    result = ops.apply_reset(ddb, plan)
    sys.stdout.write(
        f"reset {len(result.written)} lease(s) of {plan.table}"
        f"{' with rebuild markers' if args.rebuild else ''}\n"
    )
    if result.conflicts:
        sys.stderr.write(
            f"wenu-stream: {', '.join(result.conflicts)} moved after the plan and were left unchanged. "
            f"Fix: {ops.STOP_HINT}\n"
        )
        return 1
    return 0


def print_plan(plan: ops.ResetPlan) -> None:
    """One line per lease: old -> new checkpoint, and who holds it."""
    sys.stdout.write(f"plan: reset {len(plan.steps)} lease(s) of {plan.table} to {plan.target.describe()}\n")
    for step in plan.steps:
        holder = f"held by {step.lease_owner}" if step.lease_owner else "no owner"
        state = "LIVE" if step.live else "idle"
        resumes = f" (resumes at {step.resumes_at})" if step.resumes_at else ""
        sys.stdout.write(
            f"  {step.shard_id}: {step.old_checkpoint} -> {step.new_checkpoint}{resumes} "
            f"[counter {step.lease_counter}, {holder}, {state}]\n"
        )
