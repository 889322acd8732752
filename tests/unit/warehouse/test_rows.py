"""Warehouse rows: a reading becomes one row; the CSV reads back exactly (quoting, Unicode, floats)."""

from __future__ import annotations

import csv
import io
import math

from hypothesis import given
from hypothesis import strategies as st

from tests.support.warehouse import reading
from wenu_stream.warehouse.rows import COLUMN_NAMES, WarehouseRow, decode_csv, encode_csv, to_row

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
finite = st.floats(allow_nan=False, allow_infinity=False)
rows = st.builds(
    WarehouseRow,
    device=texts,
    seq=st.integers(0, 2**63 - 1),
    ch=texts,
    idx=st.integers(0, 999),
    series=texts,
    company=texts,
    site=texts,
    timezone=texts,
    kind=texts,
    unit=texts,
    t_ms=st.integers(1, 2**53 - 1),
    value=finite,
    raw_value=finite,
    shard_id=texts,
    sequence_number=st.integers(0, 2**185).map(str),
    sub_sequence=st.integers(0, 2**31 - 1),
)


def test_a_reading_maps_to_its_row() -> None:
    row = to_row("shardId-000000000001", reading())
    assert (row.device, row.seq, row.ch, row.idx, row.t_ms) == ("EM-1", 7, "active_power_w", 1, 1764300000123)
    assert (row.value, row.raw_value, row.series, row.timezone) == (
        1532.4,
        15324.0,
        "acme/hq/power",
        "Europe/Paris",
    )
    assert row.sequence_number == "49650000000000000000000000000000000000000000000000000001"
    assert (row.shard_id, row.sub_sequence) == ("shardId-000000000001", 3)


@given(st.lists(rows, max_size=5))
def test_csv_round_trip_is_exact(batch: list[WarehouseRow]) -> None:
    assert decode_csv(encode_csv(batch)) == batch


def test_text_is_quoted_numbers_are_not() -> None:
    line = encode_csv([to_row("s", reading(series='a "quoted", multi\nline', unit="", value=0.1 + 0.2))])
    assert line.startswith(b'"EM-1",7,"active_power_w",1,"a ""quoted"", multi\nline","acme","hq",')
    assert b',"",1764300000123,0.30000000000000004,15324.0,"s",' in line
    assert line.endswith(b"\n") and line.count(b"\n") == 2  # the one inside the quoted field, and the end


def test_unicode_is_utf8() -> None:
    data = encode_csv([to_row("s", reading(site="Zürich – 東京", unit="m³"))])
    assert "Zürich – 東京".encode() in data and "m³".encode() in data
    assert decode_csv(data)[0].site == "Zürich – 東京"


def test_non_finite_values_use_the_sql_spelling() -> None:
    data = encode_csv(
        [to_row("s", reading(value=math.inf, raw_value=-math.inf)), to_row("s", reading(value=math.nan))]
    )
    cells = list(csv.reader(io.StringIO(data.decode())))
    assert cells[0][COLUMN_NAMES.index("value")] == "Infinity"
    assert cells[0][COLUMN_NAMES.index("raw_value")] == "-Infinity"
    assert cells[1][COLUMN_NAMES.index("value")] == "NaN"
    assert b'"Infinity"' not in data  # unquoted: a number, not text
    back = decode_csv(data)
    assert back[0].value == math.inf and back[0].raw_value == -math.inf and math.isnan(back[1].value)


def test_columns_follow_the_row_struct() -> None:
    assert WarehouseRow.__struct_fields__ == COLUMN_NAMES
