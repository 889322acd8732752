"""`wenu-stream alarms list|history`: the alarm instances and their transitions, from DynamoDB (the readers
the API uses too, ``ops.readers``)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Iterator
from typing import Any

from wenu_stream.aws.readers import query_transitions, scan_instances
from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.errors import ConfigError

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")  # the catalog's id pattern
_LIST_COLUMNS = ("state", "severity", "company", "site", "series", "rule", "last_reading", "version")
_HISTORY_COLUMNS = ("at", "rule", "from_state", "to_state", "severity", "value", "status", "transition_id")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "alarms", help="list alarm instances or a series' transition history", description=__doc__
    )
    sub = p.add_subparsers(dest="alarms_command", required=True)
    ls = sub.add_parser("list", help="alarm instances, firing first")
    ls.add_argument("--state", choices=("firing", "pending", "ok"), help="only instances in this state")
    ls.add_argument("--company", help="only instances of this company id")
    ls.add_argument("--format", choices=("json", "table"), default="table", help="json: one object per line")
    ls.set_defaults(handler=list_alarms)
    hist = sub.add_parser("history", help="the transitions of one series, oldest first")
    hist.add_argument("--series", required=True, help="series id, as in the catalog")
    hist.add_argument(
        "--format", choices=("json", "table"), default="table", help="json: one object per line"
    )
    hist.set_defaults(handler=alarm_history)
    for parser in (ls, hist):
        add_config_flags(parser, "--log-level")


def _check_id(flag: str, value: str | None) -> None:
    if value is not None and not _ID.match(value):
        raise ConfigError(
            flag, f"{value!r} is not an id", "use 1-128 letters, digits or _ . : - (as in the catalog)"
        )


def list_alarms(args: argparse.Namespace) -> int:
    _check_id("--company", args.company)
    config = config_from(args)
    rows = [_instance_row(item) for item in _scan(config.alarms.state_table, args.state, args.company)]
    order = {"firing": 0, "pending": 1, "ok": 2}
    rows.sort(key=lambda r: (order.get(r["state"], 3), r["company"], r["series"], r["rule"]))
    _write(rows, _LIST_COLUMNS, args.format)
    return 0


def alarm_history(args: argparse.Namespace) -> int:
    _check_id("--series", args.series)
    config = config_from(args)
    import boto3

    items, _ = query_transitions(boto3.client("dynamodb"), config.alarms.transitions_table, args.series)
    rows = [_transition_row(item) for item in items]
    _write(rows, _HISTORY_COLUMNS, args.format)
    return 0


def _scan(table: str, state: str | None, company: str | None) -> Iterator[dict[str, Any]]:
    import boto3

    return scan_instances(boto3.client("dynamodb"), table, state=state, company=company)


def _iso(ms: str | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(int(ms) / 1000, dt.UTC).isoformat(timespec="milliseconds")


def _instance_row(item: dict[str, Any]) -> dict[str, Any]:
    last = item.get("last_transition", {}).get("M")
    return {
        "state": item["state"]["S"], "severity": item.get("severity", {}).get("S", ""),
        "company": item["company"]["S"], "site": item["site"]["S"], "series": item["series"]["S"],
        "rule": item["rule"]["S"], "last_reading": _iso(item.get("last_t", {}).get("N")),
        "last_value": float(item["last_value"]["N"]) if "last_value" in item else None,
        "version": int(item["version"]["N"]),
        "last_transition": None if last is None else {
            "transition_id": last["transition_id"]["S"], "to_state": last["to_state"]["S"],
            "at": _iso(last["at"]["N"]),
        },
    }  # fmt: skip


def _transition_row(item: dict[str, Any]) -> dict[str, Any]:
    value = item.get("value", {})
    return {
        "at": _iso(item["at"]["N"]), "rule": item["rule"]["S"], "series": item["series"]["S"],
        "company": item["company"]["S"], "site": item["site"]["S"], "severity": item["severity"]["S"],
        "from_state": item["from_state"]["S"], "to_state": item["to_state"]["S"],
        "value": float(value["N"]) if "N" in value else None, "status": item["status"]["S"],
        "transition_id": item["transition_id"]["S"],
    }  # fmt: skip


def _write(rows: list[dict[str, Any]], columns: tuple[str, ...], fmt: str) -> None:
    if fmt == "json":
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    cells = [[("" if row[c] is None else str(row[c])) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    for line in [list(columns), *cells]:
        sys.stdout.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n")
