"""`wenu-stream archive replay`: the raw archive's records of a time range, through an application again.

The archive is what Firehose keeps of the stream in S3 (``raw/``, one JSON line per record, written by
the archive's processor), for years after the stream's retention. A replay reads the records that
arrived in ``[--from, --to)``, and feeds each shard's records, in sequence order, under their own shard
id and sequence numbers, through the same pipeline the consumers run (``--app``): decode, dead letters,
dedup, then the application's sinks. It is as idempotent as any replay: stats windows are fenced by
shard position and alarm notifications by their ledger, so replaying what was already processed
changes nothing. ``--rebuild`` recomputes instead: each replayed shard gets a new rebuild generation
(``ingest.rebuild``) and its results are rewritten under it (a fixed catalog, a fixed rule).

Only the application's sinks run: nothing is checkpointed (the live consumers' leases are untouched).
Prints a JSON summary per shard. Exit codes: 0 replayed, 2 bad arguments (named, with the fix),
1 the archive or a sink failed (what was replayed before stays done; run it again).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.cli.output import emit_one
from wenu_stream.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "archive", help="replay the raw archive (S3) through an application", description=__doc__
    )
    sub = p.add_subparsers(dest="archive_command", required=True)
    rp = sub.add_parser("replay", help="feed the archived records of a time range through an application")
    rp.add_argument(
        "--from", dest="start", required=True, metavar="TIME", help="first arrival time (ISO, or 24h)"
    )
    rp.add_argument("--to", dest="end", required=True, metavar="TIME", help="end of the range, excluded")
    rp.add_argument(
        "--archive-bucket",
        required=True,
        metavar="BUCKET",
        help="the archive bucket (stack output ArchiveBucket)",
    )
    rp.add_argument(
        "--archive-prefix", default="raw/", metavar="PREFIX", help="Firehose's prefix (default raw/)"
    )
    rp.add_argument(
        "--rebuild",
        action="store_true",
        help="recompute the results under a new generation instead of skipping",
    )
    add_config_flags(rp, "--app", "--stream", "--bucket", "--keyring", "--kms-keyring", "--catalog")
    rp.set_defaults(handler=run_replay, default_output="json")


def run_replay(args: argparse.Namespace) -> int:
    from wenu_stream.log import configure_logging
    from wenu_stream.timeparse import parse_ms

    config = config_from(args)
    now_ms = time.time_ns() // 1_000_000
    start = parse_ms(args.start, now_ms=now_ms, field="--from")
    end = parse_ms(args.end, now_ms=now_ms, field="--to")
    if end <= start:
        raise ConfigError("--to", f"{args.end!r} is not after --from {args.start!r}", "give a later --to")
    if not args.archive_prefix.endswith("/"):
        raise ConfigError("--archive-prefix", f"{args.archive_prefix!r} is not a folder", "end it with /")
    configure_logging(config.log_level)
    emit_one(asyncio.run(replay(config, args.archive_bucket, start, end, args.archive_prefix, args.rebuild)),
             args.output)  # fmt: skip
    return 0


async def replay(
    config: Any, bucket: str, start_ms: int, end_ms: int, prefix: str, rebuild: bool
) -> dict[str, Any]:
    """Replay ``[start, end)`` of the archive through ``config.app``; a summary per shard."""
    import msgspec

    from wenu_stream.bootstrap import Runtime
    from wenu_stream.model import TRIM_HORIZON
    from wenu_stream.ops.archive import archived_records

    async with Runtime(config) as rt:
        shards = await archived_records(await rt.client("s3"), bucket, start_ms, end_ms, prefix)
        done: dict[str, Any] = {}
        for shard_id, records in shards.items():
            checkpoint = None
            if rebuild:  # the processor starts this shard afresh under the marker's new generation
                await asyncio.to_thread(_mark, config, shard_id, start_ms, end_ms)
                checkpoint = TRIM_HORIZON
            processor = rt.processor(shard_id)
            await processor.initialize(shard_id, checkpoint, ())
            step = config.kinesis.max_records
            for i in range(0, len(records), step):
                await processor.process(records[i : i + step], None)
            await processor.flush()
            await processor.close()
            done[shard_id] = {"records": len(records), "generation": processor.generation,
                              "totals": msgspec.to_builtins(processor.totals)}  # fmt: skip
    return {"app": config.app, "from_ms": start_ms, "to_ms": end_ms, "rebuild": rebuild, "shards": done}


def _mark(config: Any, shard_id: str, start_ms: int, end_ms: int) -> None:
    import datetime as dt

    import boto3

    from wenu_stream.aws.state import write_marker
    from wenu_stream.model import TRIM_HORIZON

    write_marker(
        boto3.client("dynamodb"),
        config.sinks.state_table,
        app=config.app,
        stream=config.kinesis.stream,
        shard_id=shard_id,
        from_checkpoint=TRIM_HORIZON,
        target=f"archive {start_ms}..{end_ms}",
        now=dt.datetime.now(dt.UTC),
    )
