"""`wenu-stream stats query`: a series' Company Stats windows over a time range, from DynamoDB."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from typing import Any

from wenu_stream.aws.readers import query_windows, window_row
from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.config import env_name
from wenu_stream.errors import ConfigError
from wenu_stream.timewindows import WIDTHS, to_ms

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")  # the catalog's id pattern


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("stats", help="query Company Stats windows", description=__doc__)
    sub = p.add_subparsers(dest="stats_command", required=True)
    q = sub.add_parser("query", help="the windows of one series whose start falls in [--from, --to)")
    q.add_argument("--series", required=True, help="series id, as in the catalog (e.g. acme-hq.main.power)")
    q.add_argument("--window", required=True, choices=WIDTHS, help="window width")
    q.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="ISO",
        help="first window start, ISO 8601 with an offset (e.g. 2026-10-25T00:00:00+02:00)",
    )
    q.add_argument(
        "--to", dest="end", required=True, metavar="ISO", help="end of the range (exclusive), ISO 8601"
    )
    q.add_argument("--format", choices=("json", "table"), default="table", help="json: one array of objects")
    q.add_argument(
        "--table",
        dest="cfg:stats.table",
        default=None,
        metavar="TABLE",
        help=f"stats table [env: {env_name('stats.table')}]",
    )
    add_config_flags(q, "--log-level")
    q.set_defaults(handler=query)


def parse_time(flag: str, text: str) -> int:
    """Epoch ms of an ISO 8601 time that carries an offset (``Z`` or ``+hh:mm``)."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            flag, f"{text!r} is not an ISO 8601 time", "write it like 2026-10-25T00:00:00+02:00"
        ) from None
    if moment.tzinfo is None:
        raise ConfigError(
            flag,
            f"{text!r} has no UTC offset",
            "add one, e.g. 2026-10-25T00:00:00+02:00 or 2026-10-25T00:00:00Z",
        )
    return to_ms(moment)


def query(args: argparse.Namespace) -> int:
    if not _ID.match(args.series):
        raise ConfigError(
            "--series",
            f"{args.series!r} is not a series id",
            "use 1-128 letters, digits or _ . : - (as in the catalog)",
        )
    start, end = parse_time("--from", args.start), parse_time("--to", args.end)
    if end <= start:
        raise ConfigError("--to", "it is not after --from", "give a --to later than --from")
    config = config_from(args)
    rows = [
        row(item)
        for item in fetch(config.stats.table, args.series, args.window, start, end, int(time.time()))
    ]
    write(rows, args.format)
    return 0


def fetch(
    table: str, series: str, width: str, start_ms: int, end_ms: int, now_s: int
) -> list[dict[str, Any]]:
    """Window items of ``series`` starting in ``[start_ms, end_ms)``, oldest first, never an expired one."""
    import boto3

    items, _ = query_windows(boto3.client("dynamodb"), table, series, width, start_ms, end_ms, now_s)
    return items


row = window_row  # one window as shown (the API shows the same rows)


def write(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    columns = list(dict.fromkeys(c for r in rows for c in r if c not in ("series", "window"))) or [
        "start",
        "end",
    ]
    cells = [["" if r.get(c) is None else str(r[c]) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    for line in [columns, *cells]:
        sys.stdout.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n")
