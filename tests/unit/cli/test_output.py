"""One output convention: table (units, precision, aligned), json (one document), jsonl (a line per row)."""

from __future__ import annotations

import io
import json

from wenu_stream.cli.output import Column, emit, emit_one, number


def test_numbers_are_rounded_to_the_precision_of_their_unit() -> None:
    assert number(231.456, "V") == "231.5"
    assert number(3735.724, "W") == "3736"
    assert number(36.0541234, "kWh") == "36.054"
    assert number(21.04999, "degC") == "21.0"
    assert number(-0.04, "V") == "0.0"  # no negative zero
    assert number(1.5, "furlongs") == "1.5"  # an unknown unit: up to 3 decimals
    assert number(7) == "7" and number(None) == ""


def test_the_three_formats() -> None:
    rows = [{"series": "a", "mean": 1.23456}, {"series": "bb", "mean": None}]
    table, doc, lines = io.StringIO(), io.StringIO(), io.StringIO()
    emit(rows, "table", [Column("series"), Column("mean", "mean (V)", lambda v: number(v, "V"))], out=table)
    assert table.getvalue().splitlines() == ["series  mean (V)", "a       1.2", "bb"]
    emit(rows, "json", out=doc)
    assert json.loads(doc.getvalue()) == rows
    emit(iter(rows), "jsonl", out=lines)
    assert [json.loads(line) for line in lines.getvalue().splitlines()] == rows


def test_one_object() -> None:
    out = io.StringIO()
    emit_one({"a": 1, "b": {"c": "x", "d": []}}, "table", out=out)
    assert out.getvalue().splitlines() == ["a    1", "b.c  x", "b.d  -"]
