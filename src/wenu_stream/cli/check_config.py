"""`wenu-stream check-config`: print the resolved configuration (flags > WENU_* > defaults) and check the key ring."""

from __future__ import annotations

import argparse

from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.cli.output import emit_one
from wenu_stream.config import redacted


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "check-config", help="print the resolved configuration; exit 2 if it is invalid", description=__doc__
    )
    add_config_flags(p, "--app", "--stream", "--bucket", "--keyring", "--kms-keyring", "--log-level")
    p.set_defaults(handler=run, default_output="json")


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    out = redacted(config)
    if config.keyring.file or config.keyring.kms_file:
        from wenu_stream.bootstrap import load_keyring

        out["keyring"]["key_ids"] = list(load_keyring(config).key_ids)  # ids only, never key material
    emit_one(out, args.output)
    return 0
