"""``wenu-stream records decode``: decode Kinesis records from stdin, exactly as the consumers do.

Input: JSON lines ``{"data_b64": ..., "partition_key": ...}``. Output (a filter:
JSON lines unless ``-o`` says otherwise): one object per user record,
``{"accepted": true, "key_id": ..., "message": {...}}`` or
``{"accepted": false, "reason": CODE, "detail": ...}`` (the fields of ``dlq show``'s
``decoded``). A bad input line is reported on stderr with its line number; the exit
code is then 1.
"""

from __future__ import annotations

import argparse
import binascii
import io
import json
import sys
from typing import IO, Any

import msgspec

from wenu_stream.cli.output import emit
from wenu_stream.config import load_config
from wenu_stream.errors import ConfigError, KeyRingError
from wenu_stream.records.crypto import KeyRing
from wenu_stream.records.decoding import Accepted, Rejected, decode_record


class InputLine(msgspec.Struct, frozen=True):
    """One input line: a Kinesis record's data (base64) and partition key."""

    data_b64: str
    partition_key: str = ""


_INPUT = msgspec.json.Decoder(InputLine)
_ENCODER = msgspec.json.Encoder()


def register(subparsers: Any) -> None:
    """Add ``records decode``."""
    records = subparsers.add_parser("records", help="work with wire-format records")
    actions = records.add_subparsers(dest="records_command", required=True)
    decode = actions.add_parser("decode", help="decode JSON lines of Kinesis records from stdin to stdout")
    decode.add_argument("--keyring", metavar="FILE", help="plain key-ring JSON file [env: WENU_KEYRING_FILE]")
    decode.add_argument(
        "--kms-keyring", metavar="FILE", help="KMS-wrapped key-ring file [env: WENU_KEYRING_KMS_FILE]"
    )
    decode.set_defaults(handler=run_decode, default_output="jsonl")


def run_decode(args: argparse.Namespace, stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    """Load the key ring (exit 2 if it cannot be), then decode every input line."""
    keyring = load_ring(args.keyring, args.kms_keyring)
    fmt = getattr(args, "output", "jsonl")
    if fmt == "jsonl":
        return decode_lines(stdin or sys.stdin, stdout or sys.stdout, keyring, sys.stderr)
    buffer = io.StringIO()
    status = decode_lines(stdin or sys.stdin, buffer, keyring, sys.stderr)
    rows = [json.loads(line) for line in buffer.getvalue().splitlines()]
    if fmt == "json":
        emit(rows, "json", out=stdout)
    else:
        emit([_table_row(r) for r in rows], "table", out=stdout)
    return status


def load_ring(keyring_file: str | None, kms_file: str | None) -> KeyRing:
    """Resolve the key-ring files (flag > env) and load them.

    Raises:
        ConfigError: no key ring given, or one that cannot be loaded (names the flag and the fix).
    """
    from wenu_stream.aws.keyring import load_keyring_file, load_kms_keyring

    config = load_config(overrides={"keyring.file": keyring_file, "keyring.kms_file": kms_file}).keyring
    if not config.file and not config.kms_file:
        raise ConfigError(
            "--keyring",
            "no key ring given",
            "pass --keyring FILE (a JSON object of key id -> base64 key) or --kms-keyring FILE",
        )
    try:
        ring = load_keyring_file(config.file) if config.file else None
        if config.kms_file:
            import boto3  # the edge: only when a KMS-wrapped ring is asked for

            wrapped = load_kms_keyring(config.kms_file, boto3.client("kms"))
            ring = wrapped if ring is None else ring.union(wrapped)
    except KeyRingError as exc:
        flag = "--kms-keyring" if config.kms_file and str(exc).startswith(config.kms_file) else "--keyring"
        problem, _, fix = str(exc).partition(". Fix: ")
        raise ConfigError(flag, problem, fix or "fix the file or pass another one") from None
    assert ring is not None
    return ring


def decode_lines(lines: IO[str], out: IO[str], keyring: KeyRing, err: IO[str]) -> int:
    """Decode each input line; return 1 if any input line was unusable, else 0."""
    status = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = _INPUT.decode(line)
            data = binascii.a2b_base64(item.data_b64, strict_mode=True)
        except (msgspec.DecodeError, binascii.Error) as exc:
            err.write(
                f"wenu-stream records decode: line {number}: {exc}; expected"
                ' {"data_b64": "<base64>", "partition_key": "..."}\n'
            )
            status = 1
            continue
        for result in decode_record(data, item.partition_key, keyring):
            out.write(_ENCODER.encode(_as_output(result)).decode("utf-8") + "\n")
    out.flush()
    return status


def _as_output(result: Accepted | Rejected) -> dict[str, Any]:
    if isinstance(result, Accepted):
        return {"accepted": True, "key_id": result.key_id, "message": result.message}
    return {"accepted": False, "reason": str(result.reason), "detail": result.detail}


def _table_row(row: dict[str, Any]) -> dict[str, Any]:
    message = row.get("message") or {}
    return {
        "accepted": "yes" if row["accepted"] else "no",
        "key_id / reason": row.get("key_id") or row.get("reason"),
        "device": message.get("device", ""),
        "seq": message.get("seq", ""),
        "readings": len(message.get("readings", [])) if message else "",
        "detail": row.get("detail") or "",
    }
