"""`wenu-stream quarantine list|redrive`: readings the catalog does not map, kept until it does."""

from __future__ import annotations

import argparse
import asyncio

from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.cli.output import Column, emit, emit_one, note
from wenu_stream.records.crypto import KeyRing


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "quarantine", help="list or re-drive readings the catalog does not map", description=__doc__
    )
    sub = p.add_subparsers(dest="quarantine_command", required=True)
    ls = sub.add_parser("list", help="quarantined readings counted by device, channel and reason")
    add_config_flags(ls, "--stream", "--bucket")
    ls.set_defaults(handler=list_quarantine)
    rd = sub.add_parser("redrive", help="process the readings the catalog now maps (stats + warehouse)")
    add_config_flags(rd, "--stream", "--bucket", "--catalog")
    rd.add_argument("--dry-run", action="store_true", help="only count what would be re-driven")
    rd.set_defaults(handler=redrive_quarantine, default_output="json")


def list_quarantine(args: argparse.Namespace) -> int:
    from wenu_stream.bootstrap import Runtime
    from wenu_stream.ops.quarantine import summarize

    config = config_from(args, app="processing")

    async def go() -> list[dict[str, object]]:
        async with Runtime(config, keyring=_no_keys()) as rt:
            return await summarize(await rt.client("s3"), config)

    rows = asyncio.run(go())
    emit(rows, args.output, [Column("device"), Column("ch", "channel"), Column("reason"), Column("readings")])
    if not rows and args.output == "table":
        note("nothing in quarantine: every reading maps to a series of the catalog")
    return 0


def redrive_quarantine(args: argparse.Namespace) -> int:
    from wenu_stream.bootstrap import Runtime, catalog_directory, reading_sinks
    from wenu_stream.log import configure_logging
    from wenu_stream.ops.quarantine import redrive

    config = config_from(args, app="processing")
    configure_logging(config.log_level)

    async def go() -> dict[str, int]:
        async with Runtime(config, keyring=_no_keys(), sinks=_no_sinks) as rt:
            snapshot = (await catalog_directory(rt)).refresh()
            sinks = await reading_sinks(rt, "processing")
            return await redrive(await rt.client("s3"), config, snapshot, sinks, dry_run=args.dry_run)

    emit_one(asyncio.run(go()), args.output)
    return 0


def _no_keys() -> KeyRing:
    return KeyRing.from_keys({})


async def _no_sinks(_rt):  # type: ignore[no-untyped-def]
    return ()
