"""`wenu-stream dlq summary|list|show|redrive`: inspect dead letters and re-drive the ones that now decode.

summary  letters by reason: how many, in how many objects and shards, first and last arrival;
list     one line per letter: reason, detail, position, partition key, and the object (key) holding it
         (letters are stored one object per shard, batch and reason);
show     the letters of one object (or the one at --sequence), decoded with the current key ring where
         they now decode;
redrive  decode every letter (of --reason, arrived --since) with the current key ring: those that
         now decode are put back to the stream (same partition key) and deleted once the put is
         acknowledged; the others stay (moved to their new reason if it changed). Safe to run
         again after a failure: duplicates are dropped by the consumers' (device, seq) check.
         Exit 1 if some puts were not acknowledged (their letters stay: run it again).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import msgspec

from wenu_stream.aws import dead_letters
from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.cli.output import Column, emit, emit_one, note
from wenu_stream.config import Config
from wenu_stream.errors import ConfigError, NotFoundError
from wenu_stream.ingest.batch import REDRIVE_PREFIX, ParkedReason
from wenu_stream.records.rejections import Reason

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

REASONS = (*(r.value for r in Reason), *(r.value for r in ParkedReason))  # wire, then processing


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "dlq",
        help="inspect the dead-letter store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="dlq_command", required=True)
    ls = sub.add_parser("list", help="list dead letters, newest shard positions last")
    add_config_flags(ls, "--app", "--stream", "--bucket")
    ls.add_argument("--reason", help=f"only this reason code ({', '.join(REASONS)})")
    ls.add_argument("--limit", type=int, default=0, help="stop after N letters (default: all)")
    ls.add_argument("--with-data", action="store_true", help="include the record bytes (data_b64)")
    ls.set_defaults(handler=list_letters)
    sm = sub.add_parser("summary", help="letters by reason: counts, objects, shards, first and last arrival")
    add_config_flags(sm, "--app", "--stream", "--bucket")
    sm.set_defaults(handler=summarize)
    show = sub.add_parser("show", help="one dead letter, decoded with the current key ring where possible")
    add_config_flags(show, "--app", "--stream", "--bucket", "--keyring", "--kms-keyring")
    show.add_argument("key", help="object key, as printed by `dlq list`")
    show.add_argument("--sequence", help="only the letter at this sequence number (SEQ or SEQ:SUB)")
    show.set_defaults(handler=show_letter, default_output="json")
    rd = sub.add_parser("redrive", help="put letters that now decode back to the stream")
    add_config_flags(rd, "--app", "--stream", "--bucket", "--keyring", "--kms-keyring")
    rd.add_argument("--reason", help="only this reason code (e.g. unknown_key after adding a key)")
    rd.add_argument(
        "--since",
        help="only letters that arrived at or after this time (ISO 8601, UTC without offset, or 24h ago)",
    )
    rd.add_argument("--dry-run", action="store_true", help="say what would happen, change nothing")
    rd.set_defaults(handler=redrive_letters, default_output="json")


LIST_COLUMNS = [
    Column("reason"), Column("arrival_time", "arrived"), Column("shard_id"), Column("sequence_number", "sequence"),
    Column("partition_key", "partition key"), Column("detail"), Column("key"),
]  # fmt: skip


def iter_letters(
    config: Config, reason: str | None = None, s3: S3Client | None = None
) -> Iterator[dict[str, Any]]:
    """Every dead-letter document of ``config.app`` on ``config.kinesis.stream``, with its object key."""
    s3 = s3 or boto3.client("s3")
    prefix = dead_letters.letter_prefix(
        config.sinks.dead_letter_prefix, config.app, config.kinesis.stream, reason
    )
    for letter in dead_letters.iter_letters(s3, config.sinks.bucket, prefix):
        yield msgspec.to_builtins(letter.document) | {"key": letter.key}


def list_letters(args: argparse.Namespace) -> int:
    if args.reason is not None and args.reason not in set(REASONS):
        raise ConfigError(
            "--reason",
            f"unknown reason code {args.reason!r}",
            f"use one of {', '.join(REASONS)}",
        )
    if args.limit < 0:
        raise ConfigError("--limit", "negative", "give 0 (all) or a positive count")
    config = config_from(args)
    letters = itertools.islice(iter_letters(config, args.reason), args.limit or None)
    rows = (doc if args.with_data else {k: v for k, v in doc.items() if k != "data_b64"} for doc in letters)
    emit(rows, args.output, LIST_COLUMNS)
    return 0


def summarize(args: argparse.Namespace) -> int:
    """One row per reason: how many letters, in how many objects and shards, arrived when (every object read once,
    16 at a time)."""
    config = config_from(args)
    prefix = dead_letters.letter_prefix(config.sinks.dead_letter_prefix, config.app, config.kinesis.stream)
    by_reason: dict[str, dict[str, Any]] = {}
    for letter in dead_letters.iter_letters(boto3.client("s3"), config.sinks.bucket, prefix):
        doc = letter.document
        row = by_reason.setdefault(doc.reason, {"letters": 0, "objects": set(), "shards": set(), "times": []})
        row["letters"] += 1
        row["objects"].add(letter.key)
        row["shards"].add(doc.shard_id)
        row["times"].append(doc.arrival_time)
    rows = [
        {"reason": reason, "letters": r["letters"], "objects": len(r["objects"]), "shards": len(r["shards"]),
         "first_arrival": min(r["times"]), "last_arrival": max(r["times"])}
        for reason, r in sorted(by_reason.items())
    ]  # fmt: skip
    emit(rows, args.output, [
        Column("reason"), Column("letters"), Column("objects"), Column("shards"),
        Column("first_arrival", "first arrival (UTC)", _utc), Column("last_arrival", "last arrival (UTC)", _utc),
    ])  # fmt: skip
    if not rows and args.output == "table":
        note(f"no dead letters of {config.app} on {config.kinesis.stream} in {config.sinks.bucket}")
    return 0


def _utc(text: str | None) -> str:
    return "" if not text else text.replace("T", " ").removesuffix("+00:00")


def _check_reason(reason: str | None) -> None:
    if reason is not None and reason not in set(REASONS):
        raise ConfigError("--reason", f"unknown reason code {reason!r}", f"use one of {', '.join(REASONS)}")


def show_letter(args: argparse.Namespace) -> int:
    """Print the letter's document with ``decoded``: the message if it now decodes, else the current reason."""
    from wenu_stream.bootstrap import load_keyring
    from wenu_stream.records.decoding import Accepted, decode_record

    config = config_from(args)
    try:
        keyring = load_keyring(config)
    except ConfigError:
        keyring = None  # show the letter anyway, undecoded
    letters = dead_letters.read_object(boto3.client("s3"), config.sinks.bucket, args.key)
    if letters is None:
        raise NotFoundError(
            f"no dead-letter object {args.key!r} in bucket {config.sinks.bucket}",
            "copy a key from `wenu-stream dlq list`",
        )
    if args.sequence is not None:
        letters = [d for d in letters if _at(d, args.sequence)]
        if not letters:
            raise NotFoundError(
                f"no letter at sequence {args.sequence} in {args.key}",
                "copy a sequence number from `dlq list`",
            )
    for letter in letters:
        doc = msgspec.to_builtins(letter) | {"key": args.key}
        if keyring is None:
            doc["decoded"] = {"note": "no key ring configured: set WENU_KEYRING_FILE or --keyring to decode"}
        else:
            results = decode_record(letter.raw, letter.partition_key.removeprefix(REDRIVE_PREFIX), keyring)
            first = results[0]
            doc["decoded"] = (
                {"accepted": True, "key_id": first.key_id, "message": msgspec.to_builtins(first.message)}
                if isinstance(first, Accepted)
                else {"accepted": False, "reason": str(first.reason), "detail": first.detail}
            )
        emit_one(doc, args.output)
    return 0


def _at(letter: dead_letters.DeadLetterDocument, sequence: str) -> bool:
    seq, _, sub = sequence.partition(":")
    return letter.sequence_number == seq and (not sub or str(letter.sub_sequence_number) == sub)


def redrive_letters(args: argparse.Namespace) -> int:
    """Re-drive (``wenu_stream.ops.redrive``); print a JSON summary."""
    from wenu_stream.bootstrap import load_keyring
    from wenu_stream.cli.common import now_ms
    from wenu_stream.ops import redrive
    from wenu_stream.timeparse import parse_moment

    _check_reason(args.reason)
    now = dt.datetime.fromtimestamp(now_ms() / 1000, dt.UTC)
    since = parse_moment(args.since, now=now, field="--since") if args.since else None
    config = config_from(args)
    keyring = load_keyring(config)
    s3 = boto3.client("s3")
    base = config.sinks.dead_letter_prefix
    prefix = dead_letters.letter_prefix(base, config.app, config.kinesis.stream, args.reason)
    result = redrive.redrive(
        list(dead_letters.iter_objects(s3, config.sinks.bucket, prefix)),
        keyring,
        s3=s3,
        kinesis=boto3.client("kinesis"),
        bucket=config.sinks.bucket,
        stream=config.kinesis.stream,
        prefix=base,
        since_ms=None if since is None else int(since.timestamp() * 1000),
        dry_run=args.dry_run,
    )
    emit_one({"dry_run": args.dry_run, **msgspec.to_builtins(result)}, args.output)
    return 1 if result.put_failed else 0
