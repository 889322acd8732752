"""`wenu-stream alarms list|history`: the alarm instances and their transitions, from DynamoDB.

list     instances, firing first; ``ok`` instances are hidden unless ``--all`` or ``--state ok``;
         filters: --state, --company, --site, --severity (repeatable), --rule, --series.
history  the transitions of one series, oldest first (``--from``/``--to`` in any form of
         ``wenu_stream.timeparse``, e.g. ``--since 24h``); exit 4 when the series is in
         neither the catalog nor the ledger.

Tables show times in UTC (named in the header) and values in the series' unit;
``-o json``/``-o jsonl`` give ISO times with their offset, as the API does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from typing import Any

from wenu_stream.aws.readers import query_transitions, scan_instances
from wenu_stream.cli.common import add_config_flags, config_from, now_ms, read_catalog
from wenu_stream.cli.output import Column, emit, note, number
from wenu_stream.errors import ConfigError, NotFoundError
from wenu_stream.timeparse import EXAMPLES, parse_ms

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")  # the catalog's id pattern
STATES = ("firing", "pending", "ok")
SEVERITIES = ("critical", "major", "minor", "warning")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "alarms",
        help="list alarm instances or a series' transition history",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="alarms_command", required=True)
    ls = sub.add_parser("list", help="alarm instances, firing first (ok ones only with --all)")
    ls.add_argument("--state", choices=STATES, action="append", help="only this state (repeatable)")
    ls.add_argument("--severity", choices=SEVERITIES, action="append", help="only this severity (repeatable)")
    ls.add_argument("--company", help="only this company id")
    ls.add_argument("--site", help="only this site id")
    ls.add_argument("--rule", help="only this rule id")
    ls.add_argument("--series", help="only this series id")
    ls.add_argument("--all", action="store_true", help="include ok instances")
    ls.set_defaults(handler=list_alarms)
    hist = sub.add_parser("history", help="the transitions of one series, oldest first")
    hist.add_argument("--series", required=True, help="series id, as in the catalog")
    hist.add_argument(
        "--from", "--since", dest="start", metavar="TIME", help=f"from this reading time; {EXAMPLES}"
    )
    hist.add_argument("--to", dest="end", metavar="TIME", help="until this reading time (exclusive)")
    hist.set_defaults(handler=alarm_history)
    for parser in (ls, hist):
        add_config_flags(parser, "--catalog", "--log-level")


def _check_id(flag: str, value: str | None) -> None:
    if value is not None and not _ID.match(value):
        raise ConfigError(
            flag, f"{value!r} is not an id", "use 1-128 letters, digits or _ . : - (as in the catalog)"
        )


def list_alarms(args: argparse.Namespace) -> int:
    for flag in ("company", "site", "rule", "series"):
        _check_id(f"--{flag}", getattr(args, flag))
    config = config_from(args)
    import boto3

    states = set(args.state or (STATES if args.all else ("firing", "pending")))
    equal = {"company": args.company, "site": args.site, "rule": args.rule, "series": args.series}
    if len(states) == 1:
        equal["state"] = next(iter(states))
    items = scan_instances(boto3.client("dynamodb"), config.alarms.state_table, **equal)
    rows = [r for r in map(instance_row, items) if r["state"] in states]
    if args.severity:
        rows = [r for r in rows if r["severity"] in args.severity]
    order = {s: i for i, s in enumerate(STATES)}
    rows.sort(key=lambda r: (order.get(r["state"], 3), r["company"], r["site"], r["series"], r["rule"]))
    if args.output == "table":
        units = _units(config)
        shown = [r | {"last_value": _valued(r["last_value"], units.get(r["series"], ""))} for r in rows]
        emit(shown, "table", LIST_COLUMNS)
    else:
        emit(rows, args.output)
    if not rows and args.output == "table":
        which = "any state" if args.all else "/".join(sorted(states))
        note(f"no alarm instances in {which} match" + ("" if args.all or args.state else " (ok ones: --all)"))
    return 0


def alarm_history(args: argparse.Namespace) -> int:
    _check_id("--series", args.series)
    now = now_ms()
    start = None if args.start is None else parse_ms(args.start, now_ms=now, field="--from")
    end = None if args.end is None else parse_ms(args.end, now_ms=now, field="--to")
    if start is not None and end is not None and end <= start:
        raise ConfigError("--to", "it is not after --from", "give a --to later than --from")
    config = config_from(args)
    import boto3

    items, _ = query_transitions(
        boto3.client("dynamodb"), config.alarms.transitions_table, args.series, start_ms=start, end_ms=end
    )
    rows = [transition_row(item) for item in items]
    if not rows:
        catalog = read_catalog(config)
        if catalog is None or args.series not in catalog.series:
            raise NotFoundError(
                f"no series {args.series!r} in the catalog, and no transitions of it",
                "check the id with `wenu-stream catalog export` or `wenu-stream alarms list --all`",
            )
        note(f"no transitions of {args.series}" + (" in that range" if start or end else ""))
    unit = _units(config).get(args.series, "") if rows and args.output == "table" else ""
    emit(rows, args.output, [
        Column("at", "at (UTC)", _utc_cell), Column("rule"), Column("from_state", "from"),
        Column("to_state", "to"), Column("severity"),
        Column("value", f"value ({unit})" if unit else "value", lambda v: number(v, unit)),
        Column("status"), Column("transition_id"),
    ])  # fmt: skip
    return 0


def _units(config: Any) -> dict[str, str]:
    catalog = read_catalog(config)
    return {} if catalog is None else {s: info.unit for s, info in catalog.series.items()}


def _valued(value: float | None, unit: str) -> str:
    return "" if value is None else f"{number(value, unit)} {unit}".rstrip()


def _iso(ms: str | int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(int(ms) / 1000, dt.UTC).isoformat(timespec="milliseconds")


def _utc_cell(text: str | None) -> str:
    """``2026-10-25T10:00:00.250+00:00`` -> ``2026-10-25 10:00:00.250`` (UTC is in the header)."""
    return "" if not text else text.replace("T", " ").removesuffix("+00:00").removesuffix(".000")


LIST_COLUMNS = [
    Column("state"), Column("severity"), Column("company"), Column("site"), Column("series"), Column("rule"),
    Column("last_value", "last value"), Column("last_reading", "last reading (UTC)", _utc_cell),
    Column("since", "since (UTC)", _utc_cell),
]  # fmt: skip


def instance_row(item: dict[str, Any]) -> dict[str, Any]:
    """One alarm instance as shown (the API's field names; ``since``: reading time of its last transition)."""
    last = item.get("last_transition", {}).get("M")
    return {
        "state": item["state"]["S"], "severity": item.get("severity", {}).get("S", ""),
        "company": item["company"]["S"], "site": item["site"]["S"], "series": item["series"]["S"],
        "rule": item["rule"]["S"], "last_reading": _iso(item.get("last_t", {}).get("N")),
        "last_value": float(item["last_value"]["N"]) if "last_value" in item else None,
        "since": None if last is None else _iso(last["at"]["N"]),
        "version": int(item["version"]["N"]),
        "last_transition": None if last is None else {
            "transition_id": last["transition_id"]["S"], "to_state": last["to_state"]["S"],
            "at": _iso(last["at"]["N"]),
        },
    }  # fmt: skip


def transition_row(item: dict[str, Any]) -> dict[str, Any]:
    """One transition of the ledger as shown."""
    value = item.get("value", {})
    return {
        "at": _iso(item["at"]["N"]), "rule": item["rule"]["S"], "series": item["series"]["S"],
        "company": item["company"]["S"], "site": item["site"]["S"], "severity": item["severity"]["S"],
        "from_state": item["from_state"]["S"], "to_state": item["to_state"]["S"],
        "value": float(value["N"]) if "N" in value else None, "status": item["status"]["S"],
        "transition_id": item["transition_id"]["S"],
    }  # fmt: skip
