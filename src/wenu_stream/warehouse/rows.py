"""Warehouse rows: one ``SeriesReading`` -> one row, and the CSV both Redshift and PostgreSQL COPY read.

Pure: no I/O. The CSV has no header and a fixed column order (``COLUMNS``);
every text field is quoted, numbers are not. Quoting every text field keeps an
empty string apart from NULL in both COPY dialects (our columns are never
NULL). Floats are written with ``repr``, the shortest text that reads back to
the same double, so values survive the round trip exactly. Lines end in
``\\n``; a text field may hold commas, quotes, newlines and any Unicode (UTF-8).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from typing import Self

import msgspec

from wenu_stream.model import SeriesReading


class WarehouseRow(msgspec.Struct, frozen=True, kw_only=True):
    """One reading as the warehouse stores it. ``(device, seq, sent_at, ch, idx)`` is the unique key.

    ``sent_at`` is in the key because a device's counter restarts (``ingest.dedup``): the readings of
    message 7 after a reboot are not those of message 7 before it. A replay stages the same message, so
    the same key.
    """

    device: str
    seq: int
    ch: str
    idx: int
    series: str
    company: str
    site: str
    timezone: str
    kind: str
    unit: str
    t_ms: int  # measurement time, epoch ms (the table also derives a timestamp column from it)
    value: float
    raw_value: float
    shard_id: str
    sequence_number: str  # Kinesis sequence numbers exceed every SQL integer type: kept as text
    sub_sequence: int
    sent_at: (
        int  # last: added after the table was first deployed (ALTER TABLE ... ADD COLUMN keeps the order)
    )


# (column, PostgreSQL type, Redshift type), in file order.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("device", "TEXT", "VARCHAR(64)"),
    ("seq", "BIGINT", "BIGINT"),
    ("ch", "TEXT", "VARCHAR(64)"),
    ("idx", "INTEGER", "INTEGER"),
    ("series", "TEXT", "VARCHAR(1024)"),
    ("company", "TEXT", "VARCHAR(1024)"),
    ("site", "TEXT", "VARCHAR(1024)"),
    ("timezone", "TEXT", "VARCHAR(64)"),
    ("kind", "TEXT", "VARCHAR(16)"),
    ("unit", "TEXT", "VARCHAR(64)"),
    ("t_ms", "BIGINT", "BIGINT"),
    ("value", "DOUBLE PRECISION", "DOUBLE PRECISION"),
    ("raw_value", "DOUBLE PRECISION", "DOUBLE PRECISION"),
    ("shard_id", "TEXT", "VARCHAR(128)"),
    ("sequence_number", "TEXT", "VARCHAR(128)"),
    ("sub_sequence", "INTEGER", "INTEGER"),
    ("sent_at", "BIGINT", "BIGINT"),
)
COLUMN_NAMES = tuple(name for name, _, _ in COLUMNS)
KEY = ("device", "seq", "sent_at", "ch", "idx")
_TYPES = {
    name: field.type for name, field in zip(COLUMN_NAMES, msgspec.structs.fields(WarehouseRow), strict=True)
}


def to_row(shard_id: str, reading: SeriesReading) -> WarehouseRow:
    """The warehouse row of one reading staged from ``shard_id``."""
    return WarehouseRow(
        device=reading.device,
        seq=reading.seq,
        ch=reading.ch,
        idx=reading.index,
        series=reading.series,
        company=reading.company,
        site=reading.site,
        timezone=reading.timezone,
        kind=reading.kind,
        unit=reading.unit,
        t_ms=reading.t,
        value=reading.value,
        raw_value=reading.raw_value,
        shard_id=shard_id,
        sequence_number=str(reading.position.sequence),
        sub_sequence=reading.position.sub,
        sent_at=reading.sent_at,
    )


def _cells(row: WarehouseRow) -> tuple[object, ...]:
    cells = msgspec.structs.astuple(row)
    if all(math.isfinite(cells[i]) for i in _FLOATS):
        return cells
    # Both COPY dialects read these words; csv would write "nan"/"inf", which they do not.
    return tuple(
        _NonFinite(_SQL_FLOAT[str(c)]) if i in _FLOATS and not math.isfinite(c) else c
        for i, c in enumerate(cells)
    )


_FLOATS = tuple(i for i, (_, pg, _) in enumerate(COLUMNS) if pg == "DOUBLE PRECISION")
_SQL_FLOAT = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


class _NonFinite(float):
    """A float whose CSV text is the SQL spelling of NaN/Infinity (csv writes numbers with ``repr``)."""

    _text: str

    def __new__(cls, text: str) -> Self:
        self = super().__new__(cls, text)
        self._text = text
        return self

    def __repr__(self) -> str:
        return self._text


def encode_csv(rows: Iterable[WarehouseRow]) -> bytes:
    """Encode rows as UTF-8 CSV in ``COLUMNS`` order, without a header."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerows(map(_cells, rows))
    return out.getvalue().encode()


def decode_csv(data: bytes) -> list[WarehouseRow]:
    """Read rows written by ``encode_csv`` (for tests and tools; the databases read the files themselves)."""
    reader = csv.reader(io.StringIO(data.decode(), newline=""), strict=True)
    rows = []
    for cells in reader:
        fields = {name: _TYPES[name](cell) for name, cell in zip(COLUMN_NAMES, cells, strict=True)}
        rows.append(WarehouseRow(**fields))
    return rows
