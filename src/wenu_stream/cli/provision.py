"""`wenu-stream provision`: create the stream, tables, bucket, topic and queues idempotently."""

from __future__ import annotations

import argparse

from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.cli.output import emit_one
from wenu_stream.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "provision", help="create every resource the platform needs (idempotent)", description=__doc__
    )
    add_config_flags(p, "--stream", "--bucket")
    p.add_argument("--shards", type=int, default=4, help="shard count of a newly created stream (default 4)")
    p.set_defaults(handler=run, default_output="json")


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.shards <= 500:
        raise ConfigError("--shards", f"{args.shards} is out of range", "give a shard count from 1 to 500")
    config = config_from(args)
    from wenu_stream.aws.provision import provision

    emit_one(provision(config, shards=args.shards), args.output)
    return 0
