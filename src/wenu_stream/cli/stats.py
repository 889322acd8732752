"""`wenu-stream stats query`: a series' Company Stats windows over a time range, from DynamoDB.

Times (``--from``, ``--to``, ``--since``) take every form of ``wenu_stream.timeparse``:
ISO 8601 (without an offset: UTC), ``now``, or relative (``24h`` ago, ``-2h``, ``+15m``).
The table shows each value in the series' unit, rounded to the unit's precision,
and the window bounds in the site's zone (named in the header); ``-o json`` and
``-o jsonl`` give the rows the API gives (ISO times with their offset), plus ``unit``.

Exit code 4 when the series is not in the catalog and has no windows; a known
series without windows in the range exits 0 and says so on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import re
from typing import Any

from wenu_stream.aws.readers import query_windows, window_row
from wenu_stream.cli.common import add_config_flags, config_from, now_ms, read_catalog
from wenu_stream.cli.output import Column, emit, note, number
from wenu_stream.config import env_name
from wenu_stream.errors import ConfigError, NotFoundError
from wenu_stream.timeparse import EXAMPLES, parse_ms
from wenu_stream.timewindows import WIDTHS

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")  # the catalog's id pattern


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("stats", help="query Company Stats windows", description=__doc__)
    sub = p.add_subparsers(dest="stats_command", required=True)
    q = sub.add_parser(
        "query",
        help="the windows of one series whose start falls in [--from, --to)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("--series", required=True, help="series id, as in the catalog (e.g. acme-hq.main.power)")
    q.add_argument("--window", required=True, choices=WIDTHS, help="window width")
    q.add_argument(
        "--from",
        "--since",
        dest="start",
        default="24h",
        metavar="TIME",
        help=f"first window start (default 24h ago); e.g. {EXAMPLES}",
    )
    q.add_argument(
        "--to", dest="end", default="now", metavar="TIME", help="end of the range, exclusive (default now)"
    )
    q.add_argument(
        "--table",
        dest="cfg:stats.table",
        default=None,
        metavar="TABLE",
        help=f"stats table [env: {env_name('stats.table')}]",
    )
    add_config_flags(q, "--catalog", "--log-level")
    q.set_defaults(handler=query)


def query(args: argparse.Namespace) -> int:
    if not _ID.match(args.series):
        raise ConfigError(
            "--series",
            f"{args.series!r} is not a series id",
            "use 1-128 letters, digits or _ . : - (as in the catalog)",
        )
    now = now_ms()
    start, end = (
        parse_ms(args.start, now_ms=now, field="--from"),
        parse_ms(args.end, now_ms=now, field="--to"),
    )
    if end <= start:
        raise ConfigError("--to", "it is not after --from", "give a --to later than --from")
    config = config_from(args)
    items = fetch(config.stats.table, args.series, args.window, start, end, now // 1000)
    catalog = read_catalog(config)
    info = None if catalog is None else catalog.series.get(args.series)
    if not items:
        span = f"[{_utc(start)}, {_utc(end)})"
        if info is None:
            raise NotFoundError(
                f"no series {args.series!r} in the catalog, and no {args.window} windows of it in {span}",
                "check the id with `wenu-stream catalog export` (series ids look like acme-hq.em-000001.power)",
            )
        note(f"no {args.window} windows of {args.series} start in {span}")
    unit, zone = (info.unit, info.timezone) if info is not None else ("", "")
    rows = [row(item) | ({"unit": unit} if info is not None else {}) for item in items]
    emit(rows, args.output, columns(rows, unit, zone if args.window in ("1d", "1mo") else "UTC"))
    return 0


def fetch(
    table: str, series: str, width: str, start_ms: int, end_ms: int, now_s: int
) -> list[dict[str, Any]]:
    """Window items of ``series`` starting in ``[start_ms, end_ms)``, oldest first, never an expired one."""
    import boto3

    items, _ = query_windows(boto3.client("dynamodb"), table, series, width, start_ms, end_ms, now_s)
    return items


row = window_row  # one window as shown (the API shows the same rows)


def columns(rows: list[dict[str, Any]], unit: str, zone: str) -> list[Column]:
    """Table columns: bounds in ``zone`` (named), values in ``unit`` at its precision, counts as integers."""
    names = [c for c in dict.fromkeys(k for r in rows for k in r) if c not in ("series", "window", "unit")]
    suffix = f" ({unit})" if unit else ""
    out = [Column(k, f"{k} ({zone})", _local) if zone else Column(k) for k in ("start", "end")]
    for name in names:
        if name in ("start", "end"):
            continue
        if name == "count":
            out.append(Column(name, "readings"))
        else:
            out.append(Column(name, name + suffix, functools.partial(_in_unit, unit)))
    return out


def _in_unit(unit: str, value: float | None) -> str:
    return number(value, unit)


def _local(text: str | None) -> str:
    """``2026-10-25T00:00:00+02:00`` -> ``2026-10-25 00:00`` (the zone is in the header)."""
    if not text:
        return ""
    moment = dt.datetime.fromisoformat(text)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M")


def _utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
