"""Flags shared by several subcommands, mapped onto config leaves (flag > WENU_* env > default)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from wenu_stream.config import Config, env_name, load_config

# flag -> (config leaf, help)
SHARED_FLAGS: dict[str, tuple[str, str]] = {
    "--app": ("app", "application: processing or alarms"),
    "--stream": ("kinesis.stream", "Kinesis stream name"),
    "--bucket": ("sinks.bucket", "S3 bucket for dead letters, staging and quarantine"),
    "--keyring": ("keyring.file", "JSON key-ring file {key_id: base64 key}"),
    "--kms-keyring": ("keyring.kms_file", "KMS-wrapped key-ring file"),
    "--log-level": ("log_level", "debug, info, warning or error"),
    "--catalog": ("catalog.url", "catalog store: sqlite:///path or postgresql://..."),
}


def add_config_flags(parser: argparse.ArgumentParser, *flags: str) -> None:
    """Add the named shared flags; each shows its environment variable in --help."""
    for flag in flags:
        leaf, text = SHARED_FLAGS[flag]
        parser.add_argument(
            flag,
            dest=f"cfg:{leaf}",
            default=None,
            metavar=leaf.split(".")[-1].upper(),
            help=f"{text} [env: {env_name(leaf)}]",
        )


def config_from(args: argparse.Namespace, **extra: Any) -> Config:
    """Resolve the configuration from the parsed flags over the environment."""
    overrides = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg:")}
    overrides.update({k: v for k, v in extra.items() if v is not None})
    return load_config(os.environ, overrides)
