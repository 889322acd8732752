"""`wenu-stream check-config`: print the resolved configuration (flags > --set > WENU_* > defaults).

Without ``--app`` it checks the settings and, when one is configured, the key ring.
With ``--app processing|alarms`` it checks everything ``run --app`` needs, reading
only, in the order ``run`` does before it touches anything: the key ring, the
metrics address, the catalog (it exists and holds a company), the stream, the
bucket, the application's tables and (alarms) the SNS topic; the output then
has a ``ready`` section with what was found. Exit 2 names the first setting
that is wrong and the fix; AWS errors exit as ``wenu-stream --help`` lists.
"""

from __future__ import annotations

import argparse
from typing import Any

from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.cli.output import emit_one, note
from wenu_stream.config import Config, redacted


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "check-config",
        help="print the resolved configuration; with --app, check all that `run` needs; exit 2 if invalid",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(
        p, "--app", "--stream", "--bucket", "--keyring", "--kms-keyring", "--catalog", "--log-level"
    )
    p.set_defaults(handler=run, default_output="json")


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    out = redacted(config)
    deep = getattr(args, "cfg:app", None) is not None
    if deep or config.keyring.file or config.keyring.kms_file:
        from wenu_stream.bootstrap import keyring_warnings, load_keyring

        out["keyring"]["key_ids"] = list(load_keyring(config).key_ids)  # ids only, never key material
        for warning in keyring_warnings(config):
            note(f"warning: {warning}")
    if deep:
        out["ready"] = {ready.setting: ready.found for ready in check_ready(config)}
    emit_one(out, args.output)
    return 0


def check_ready(config: Config) -> list[Any]:
    """``ops.preflight.check_app`` with this process's AWS clients."""
    import boto3

    from wenu_stream.aws.common import sync_client_config
    from wenu_stream.ops.preflight import check_app

    aws = sync_client_config(config.aws.connect_timeout_s, config.aws.read_timeout_s)
    return check_app(
        config,
        kinesis=boto3.client("kinesis", config=aws),
        s3=boto3.client("s3", config=aws),
        dynamodb=boto3.client("dynamodb", config=aws),
        sns=boto3.client("sns", config=aws),
    )
