"""Command line of wenu-stream.

Each subcommand lives in ``wenu_stream.cli.<name>`` and exposes
``register(subparsers)``; the handler it sets returns an exit code.
Bad arguments or configuration exit with code 2 and a message that names the
field and the fix, before any side effect. Global options (before or after the
subcommand): ``-o/--output``, ``--region``, ``--profile``, ``--endpoint-url``
and ``--set key=value``. Exit codes: ``wenu_stream.cli.failures``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

from wenu_stream import __version__
from wenu_stream.cli import awsenv, failures, output
from wenu_stream.errors import WenuError

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
    "archive",
    "service",
    "alarms",
    "stats",
    "demo",
    "catalog",
    "warehouse",
    "check-config",
    "serve-metrics",
    "serve",
    "api",
    "completion",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2 as well; keep its message and add a hint
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\nFix: see '{self.prog} --help'.\n")


def add_global_options(parser: argparse.ArgumentParser, *, leaf: bool) -> None:
    """The options every command takes, like the AWS CLI's and kubectl's.

    On the root they carry the defaults; on each subcommand they default to nothing
    (``SUPPRESS``), so ``wenu-stream -o json alarms list`` and ``wenu-stream alarms list -o json`` agree.
    """
    group = parser.add_argument_group("global options")

    def default(value: object) -> object:
        return argparse.SUPPRESS if leaf else value

    group.add_argument(
        "-o",
        "--output",
        choices=output.FORMATS,
        default=default(None),
        help="output format: table (people; the default but for filters such as records decode), "
        "json (one document), jsonl (one object per line)",
    )
    group.add_argument(
        "--region", default=default(None), help="AWS region (else AWS_REGION, AWS_DEFAULT_REGION)"
    )
    group.add_argument(
        "--profile", default=default(None), help="AWS profile of ~/.aws/config (else AWS_PROFILE)"
    )
    group.add_argument(
        "--endpoint-url",
        default=default(None),
        metavar="URL",
        help="AWS endpoint for every service (AWS_ENDPOINT_URL_<SERVICE> still wins for its service)",
    )
    group.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=default([]),
        metavar="KEY=VALUE",
        help="any setting, e.g. --set kinesis.poll_interval_ms=500 (repeatable; names as in check-config; "
        "a command's own flags win over it, and it wins over WENU_* variables)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argparse tree from every command module that is installed."""
    parser = _Parser(
        prog="wenu-stream",
        description=__doc__.splitlines()[0],
        epilog="exit codes:\n" + failures.EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wenu-stream {__version__}")
    add_global_options(parser, leaf=False)
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"wenu_stream.cli.{name.replace('-', '_')}")
        except ModuleNotFoundError as exc:
            if exc.name != f"wenu_stream.cli.{name.replace('-', '_')}":
                raise
            continue
        module.register(subparsers)
    for leaf in _leaves(parser):
        add_global_options(leaf, leaf=True)
    return parser


def _leaves(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser of the tree that has no subcommands of its own (aliases once)."""
    seen: set[int] = set()
    todo = [parser]
    while todo:
        current = todo.pop()
        subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            if current is not parser:
                yield current
            continue
        for child in subs[0].choices.values():
            if id(child) not in seen:
                seen.add(id(child))
                todo.append(child)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = getattr(args, "default_output", output.DEFAULT)
    try:
        with awsenv.applied(args.region, args.profile, args.endpoint_url):
            code = int(args.handler(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _stdout_gone()
    except KeyboardInterrupt:
        return failures.INTERRUPTED
    except Exception as exc:
        failure = failures.explain(exc)
        if failure is not None:
            _say(failure.line)
            return failure.code
        if isinstance(exc, WenuError):  # our own message; an explainable cause lends its exit code
            cause = failures.explain(exc.__cause__) if exc.__cause__ is not None else None
            _say(str(exc))
            return cause.code if cause is not None else failures.FAILED
        raise


def _say(line: str) -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_gone()
    print(f"wenu-stream: {line}", file=sys.stderr)


def _stdout_gone() -> int:
    """The reader of stdout left (``| head``): stop writing, and keep the interpreter's final flush quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (a test's capture): nothing to silence
        pass
    return failures.BROKEN_PIPE
