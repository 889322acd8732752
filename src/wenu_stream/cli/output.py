"""Command output, one convention for every command: ``-o/--output table|json|jsonl``.

- ``table`` (the default): aligned columns for people; headers carry units
  (``mean (W)``) and zones (``start (Europe/Paris)``), numbers are rounded
  to the precision of their unit;
- ``json``: one JSON document (an array of rows, or one object);
- ``jsonl``: one JSON object per line (rows stream as they come).

The same thing has the same field name in every command and in the API:
``reason`` (a dead-letter or quarantine reason code, never ``error``),
``series``, ``company``, ``site``, ``rule``, ``shard_id``, ``at`` (a reading
time), times as ISO 8601 strings with their offset.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any, NamedTuple

FORMATS = ("table", "json", "jsonl")
DEFAULT = "table"

# Decimals shown per unit in tables (JSON keeps full precision). A unit not listed shows 3 significant
# decimals at most, trailing zeros dropped.
UNIT_DECIMALS: dict[str, int] = {
    "W": 0, "kW": 3, "MW": 3, "Wh": 0, "kWh": 3, "MWh": 3, "VA": 0, "kVA": 3, "var": 0, "kvar": 3,
    "V": 1, "kV": 3, "A": 2, "Hz": 2, "%": 1, "degC": 1, "degF": 1, "K": 1, "Pa": 0, "hPa": 1, "bar": 3,
    "m3": 3, "L": 1, "m3/h": 3, "L/min": 1, "ppm": 0, "lx": 0, "s": 1, "ms": 0,
}  # fmt: skip


class Column(NamedTuple):
    """A table column: the row key, its header, and how a value is shown (default: ``show``)."""

    key: str
    header: str = ""
    show: Callable[[Any], str] | None = None


def decimals_of(unit: str) -> int | None:
    """Decimals a value in ``unit`` is shown with (None: up to 3, trailing zeros dropped)."""
    return UNIT_DECIMALS.get(unit)


def number(value: float | None, unit: str = "") -> str:
    """A number as a table shows it, rounded to the precision of ``unit``."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    places = decimals_of(unit)
    if places is None:
        text = f"{value:.3f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    text = f"{value:.{places}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def show(value: Any) -> str:
    """Default cell text: empty for None, numbers via :func:`number`, lists comma-joined."""
    if value is None:
        return ""
    if isinstance(value, float):
        return number(value)
    if isinstance(value, list | tuple):
        return ",".join(map(show, value)) or "-"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def emit(
    rows: Iterable[Mapping[str, Any]],
    fmt: str,
    columns: Sequence[Column] | None = None,
    *,
    out: IO[str] | None = None,
) -> int:
    """Write rows in ``fmt``; return how many were written.

    Args:
        rows: Row mappings (JSON-able). ``jsonl`` streams them; ``json`` and ``table`` need them all.
        fmt: ``table``, ``json`` or ``jsonl``.
        columns: Table columns (default: every key of the first row); ignored by JSON.
        out: Where to write (default ``sys.stdout``).
    """
    out = out or sys.stdout
    if fmt == "jsonl":
        n = 0
        for row in rows:
            out.write(json.dumps(row, default=str) + "\n")
            n += 1
        return n
    every = list(rows)
    if fmt == "json":
        out.write(json.dumps(every, indent=2, default=str) + "\n")
        return len(every)
    cols = list(columns or [Column(k) for k in (every[0] if every else {})])
    if not cols:
        return 0
    cells = [[(c.show or show)(row.get(c.key)) for c in cols] for row in every]
    headers = [c.header or c.key for c in cols]
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]
    for line in [headers, *cells]:
        out.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n")
    return len(every)


def emit_one(document: Mapping[str, Any], fmt: str, *, out: IO[str] | None = None) -> None:
    """Write one object: pretty JSON (``json``), one line (``jsonl``), or ``key  value`` lines (``table``,
    nested keys dotted)."""
    out = out or sys.stdout
    if fmt == "jsonl":
        out.write(json.dumps(document, default=str) + "\n")
        return
    if fmt == "json":
        out.write(json.dumps(document, indent=2, default=str) + "\n")
        return
    flat = dict(_flatten(document))
    width = max((len(k) for k in flat), default=0)
    for key, value in flat.items():
        out.write(f"{key.ljust(width)}  {show(value)}".rstrip() + "\n")


def _flatten(value: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, item in value.items():
        if isinstance(item, Mapping) and item:
            yield from _flatten(item, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", item


def note(text: str) -> None:
    """A remark for people (``no windows in range``): stderr, so piped output stays clean."""
    sys.stderr.write(f"wenu-stream: {text}\n")
