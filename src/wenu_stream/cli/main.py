"""Command line of wenu-stream.

Each subcommand lives in ``wenu_stream.cli.<name>`` and exposes
``register(subparsers)``; the handler it sets returns an exit code.
Bad arguments or configuration exit with code 2 and a message that names the
field and the fix, before any side effect.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from wenu_stream import __version__
from wenu_stream.errors import ConfigError, WenuError

# Modules under wenu_stream.cli, in the order they appear in --help.
COMMANDS = (
    "run",
    "records",
    "simulate",
    "emulator",
    "provision",
    "dlq",
    "checkpoints",
    "quarantine",
    "alarms",
    "stats",
    "demo",
    "catalog",
    "warehouse",
    "check-config",
    "serve-metrics",
    "serve",
    "api",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2 as well; keep its message and add a hint
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\nFix: see '{self.prog} --help'.\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argparse tree from every command module that is installed."""
    parser = _Parser(prog="wenu-stream", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"wenu-stream {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"wenu_stream.cli.{name.replace('-', '_')}")
        except ModuleNotFoundError as exc:
            if exc.name != f"wenu_stream.cli.{name.replace('-', '_')}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        print(f"wenu-stream: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except WenuError as exc:
        print(f"wenu-stream: {exc}", file=sys.stderr)
        return 1
