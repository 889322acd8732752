"""`wenu-stream dlq list`: show dead letters (one JSON line each: reason, detail, position, partition key)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

import boto3

from wenu_stream.commands.common import add_config_flags, config_from
from wenu_stream.config import Config
from wenu_stream.errors import ConfigError
from wenu_stream.records.rejections import Reason


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("dlq", help="inspect the dead-letter store", description=__doc__)
    sub = p.add_subparsers(dest="dlq_command", required=True)
    ls = sub.add_parser("list", help="list dead letters, newest shard positions last")
    add_config_flags(ls, "--app", "--stream", "--bucket")
    ls.add_argument("--reason", help=f"only this reason code ({', '.join(r.value for r in Reason)})")
    ls.add_argument("--limit", type=int, default=0, help="stop after N letters (default: all)")
    ls.add_argument("--with-data", action="store_true", help="include the record bytes (data_b64)")
    ls.set_defaults(handler=list_letters)


def letter_prefix(config: Config, reason: str | None = None) -> str:
    base = f"{config.sinks.dead_letter_prefix}{config.app}/{config.kinesis.stream}/"
    return base + (f"{reason}/" if reason else "")


def iter_letters(config: Config, reason: str | None = None, s3: Any = None) -> Iterator[dict[str, Any]]:
    """Every dead-letter document of ``config.app`` on ``config.kinesis.stream``, with its object key."""
    s3 = s3 or boto3.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=config.sinks.bucket, Prefix=letter_prefix(config, reason))
    for page in pages:
        for obj in page.get("Contents", []):
            doc = json.loads(s3.get_object(Bucket=config.sinks.bucket, Key=obj["Key"])["Body"].read())
            doc["key"] = obj["Key"]
            yield doc


def list_letters(args: argparse.Namespace) -> int:
    if args.reason is not None and args.reason not in {r.value for r in Reason}:
        raise ConfigError("--reason", f"unknown reason code {args.reason!r}",
                          f"use one of {', '.join(r.value for r in Reason)}")
    if args.limit < 0:
        raise ConfigError("--limit", "negative", "give 0 (all) or a positive count")
    config = config_from(args)
    for n, doc in enumerate(iter_letters(config, args.reason), 1):
        if not args.with_data:
            doc.pop("data_b64", None)
        sys.stdout.write(json.dumps(doc) + "\n")
        if args.limit and n >= args.limit:
            break
    return 0
