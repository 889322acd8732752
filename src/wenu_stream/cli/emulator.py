"""`wenu-stream emulator run|start|stop|env`: the local AWS stack on 127.0.0.1.

``run`` stays in the foreground until Ctrl-C; ``start`` detaches and prints the
``export`` lines to point the SDK at it; ``stop`` stops what ``start`` started;
``env`` prints the exports of a running stack again.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from wenu_stream.devtools.emulator.stack import EmulatorError, StackSpec, read_stack, start_stack, stop_stack
from wenu_stream.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "emulator",
        help="run the local AWS stack (moto + dynalite + a Kinesis emulator) on loopback",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", choices=["run", "start", "stop", "env"])
    p.add_argument(
        "--run-dir", default=".run/stack", help="where logs, data and the pid file go (default .run/stack)"
    )
    p.add_argument(
        "--kinesis",
        choices=["kinesalite", "kinesis-local"],
        default="kinesalite",
        help="Kinesis emulator (default kinesalite: fast; kinesis-local: faithful, slow)",
    )
    p.add_argument(
        "--dynamodb",
        choices=["dynalite", "moto"],
        default="dynalite",
        help="DynamoDB emulator (default dynalite: fast; moto: TTL settings and transactions, slow)",
    )
    p.add_argument("--moto-port", type=int, default=0, help="port of moto's server (default: a free one)")
    p.add_argument(
        "--kinesis-port", type=int, default=0, help="port of the Kinesis emulator (default: a free one)"
    )
    p.add_argument("--dynamodb-port", type=int, default=0, help="port of dynalite (default: a free one)")
    p.add_argument(
        "--persist",
        action="store_true",
        help="keep kinesalite's and dynalite's data in the run dir across restarts",
    )
    p.set_defaults(handler=run)


def _exports(env: dict[str, str]) -> str:
    return "".join(f"export {k}={v}\n" for k, v in env.items())


def run(args: argparse.Namespace) -> int:
    for flag in ("moto_port", "kinesis_port", "dynamodb_port"):
        if not 0 <= getattr(args, flag) <= 65535:
            raise ConfigError(
                f"--{flag.replace('_', '-')}", "not a port", "give 0 (any free port) or 1..65535"
            )
    running = read_stack(args.run_dir)
    if args.action in ("stop", "env"):
        if running is None:
            print(f"no stack recorded in {args.run_dir}", file=sys.stderr)
            return 1
        if args.action == "stop":
            stop_stack(running)
        else:
            sys.stdout.write(_exports(running.env()))
        return 0
    if running is not None:
        print(
            f"a stack is already recorded in {args.run_dir}; run `wenu-stream emulator stop` first",
            file=sys.stderr,
        )
        return 1
    spec = StackSpec(
        run_dir=args.run_dir,
        kinesis=args.kinesis,
        dynamodb=args.dynamodb,
        moto_port=args.moto_port,
        kinesis_port=args.kinesis_port,
        dynamodb_port=args.dynamodb_port,
        persist=args.persist,
    )
    try:
        stack = start_stack(spec)
    except EmulatorError as exc:
        print(f"wenu-stream: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(_exports(stack.env()))
    sys.stdout.flush()
    if args.action == "start":
        return 0
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_stack(stack)
    return 0
