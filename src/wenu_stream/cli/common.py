"""Flags shared by several subcommands, mapped onto config leaves (flag > WENU_* env > default)."""

from __future__ import annotations

import argparse
import os
import time
from typing import TYPE_CHECKING, Any

from wenu_stream.config import Config, env_name, load_config, setting_path
from wenu_stream.errors import ConfigError, WenuError

if TYPE_CHECKING:
    from wenu_stream.catalog.directory import CatalogSnapshot

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
    """Resolve the configuration: a command's own flags > ``--set key=value`` > ``WENU_*`` > defaults."""
    overrides = parse_settings(getattr(args, "settings", None) or [])
    overrides.update({k[4:]: v for k, v in vars(args).items() if k.startswith("cfg:") and v is not None})
    overrides.update({k: v for k, v in extra.items() if v is not None})
    return load_config(os.environ, overrides)


def parse_settings(items: list[str]) -> dict[str, str]:
    """``["kinesis.stream=x", "WENU_SINKS_BUCKET=b"]`` -> ``{"kinesis.stream": "x", "sinks.bucket": "b"}``.

    Raises:
        ConfigError: an item without ``=`` or an unknown name (with the closest whole name).
    """
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set {item}", "not KEY=VALUE", "write it like --set kinesis.stream=readings")
        out[setting_path(name.strip())] = value
    return out


def read_catalog(config: Config) -> CatalogSnapshot | None:
    """The catalog as it stands (for units, zones and names in tables), or None with a note when it cannot
    be read: a reading command still shows what the stores hold."""
    from wenu_stream.catalog.store import CatalogStore
    from wenu_stream.cli.output import note

    try:
        with CatalogStore(config.catalog.url, create=False) as store:
            return store.snapshot()
    except WenuError as exc:
        note(f"catalog not read ({exc}): no units or zones shown")
        return None


def now_ms() -> int:
    """The wall clock, epoch milliseconds (relative times count from it)."""
    return int(time.time() * 1000)
