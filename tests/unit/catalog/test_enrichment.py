"""Enrichment: normalised values, catalog attributes, and unmapped readings with their reason."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.catalog import spec_document
from wenu_stream.catalog.directory import CatalogSnapshot, build_snapshot
from wenu_stream.catalog.document import validate
from wenu_stream.catalog.enrichment import enrich
from wenu_stream.model import Position, SeriesReading, Unmapped, UnmappedReason
from wenu_stream.records.payload import Message, Reading

AT = Position(4242, 1)


def snapshot(raw: dict[str, Any] | None = None) -> CatalogSnapshot:
    document = validate(raw or spec_document()).document
    assert document is not None
    return build_snapshot(7, document)


def message(*readings: tuple[str, int, float], device: str = "EM-000001", seq: int = 9) -> Message:
    return Message(
        device=device,
        seq=seq,
        sent_at=1_700_000_000_500,
        readings=tuple(Reading(ch, t, v) for ch, t, v in readings),
    )


def test_a_mapped_reading_becomes_a_series_reading() -> None:
    mapped, unmapped = enrich(message(("energy_kwh", 1_700_000_000_000, 12.5)), AT, snapshot())
    assert unmapped == []
    assert mapped == [
        SeriesReading(
            series="acme-hq.main.energy",
            company="acme",
            site="acme-hq",
            timezone="America/Santiago",
            kind="counter",
            unit="kWh",
            device="EM-000001",
            ch="energy_kwh",
            seq=9,
            index=0,
            t=1_700_000_000_000,
            value=12.5,
            raw_value=12.5,
            position=AT,
            sent_at=1_700_000_000_500,
        )
    ]


@pytest.mark.parametrize(
    ("scale", "offset", "v", "expected"),
    [
        (1.0, 0.0, 230.0, 230.0),
        (0.001, 0.0, 1500.0, 1.5),
        (1.0, -273.15, 300.0, 300.0 - 273.15),
        (2.0, 10.0, -3.0, 4.0),
        (0.0, 5.0, 123.0, 5.0),
    ],
)
def test_value_is_v_times_scale_plus_offset(scale: float, offset: float, v: float, expected: float) -> None:
    raw = spec_document()
    raw["companies"][0]["sites"][0]["devices"][0]["channels"][0].update(scale=scale, offset=offset)
    (reading,), _ = enrich(message(("active_power_w", 1_700_000_000_000, v)), AT, snapshot(raw))
    assert reading.value == pytest.approx(expected)
    assert reading.raw_value == v


def test_readings_keep_their_index_and_order() -> None:
    msg = message(("active_power_w", 3, 1.0), ("energy_kwh", 1, 2.0), ("active_power_w", 2, 3.0))
    mapped, _ = enrich(msg, AT, snapshot())
    assert [(r.index, r.series, r.t) for r in mapped] == [
        (0, "acme-hq.main.power", 3),
        (1, "acme-hq.main.energy", 1),
        (2, "acme-hq.main.power", 2),
    ]


def test_an_unknown_device_leaves_every_reading_unmapped() -> None:
    msg = message(("energy_kwh", 5, 1.0), ("x", 6, 2.0), device="EM-404", seq=3)
    mapped, unmapped = enrich(msg, AT, snapshot())
    assert mapped == []
    assert unmapped == [
        Unmapped(
            device="EM-404",
            ch="energy_kwh",
            t=5,
            v=1.0,
            seq=3,
            index=0,
            reason=UnmappedReason.UNKNOWN_DEVICE,
            position=AT,
            sent_at=1_700_000_000_500,
        ),
        Unmapped(
            device="EM-404",
            ch="x",
            t=6,
            v=2.0,
            seq=3,
            index=1,
            reason=UnmappedReason.UNKNOWN_DEVICE,
            position=AT,
            sent_at=1_700_000_000_500,
        ),
    ]


def test_an_unknown_channel_is_unmapped_and_the_others_go_through() -> None:
    mapped, unmapped = enrich(message(("voltage_v", 5, 229.0), ("energy_kwh", 6, 2.0)), AT, snapshot())
    assert [r.series for r in mapped] == ["acme-hq.main.energy"]
    assert unmapped == [
        Unmapped(
            device="EM-000001",
            ch="voltage_v",
            t=5,
            v=229.0,
            seq=9,
            index=0,
            reason=UnmappedReason.UNKNOWN_CHANNEL,
            position=AT,
            sent_at=1_700_000_000_500,
        )
    ]
    assert unmapped[0].reason == "unknown_channel"


def test_a_device_without_channels_is_known() -> None:
    raw = spec_document()
    raw["companies"][0]["sites"][0]["devices"].append({"id": "EM-2"})
    _, unmapped = enrich(message(("energy_kwh", 5, 1.0), device="EM-2"), AT, snapshot(raw))
    assert [u.reason for u in unmapped] == [UnmappedReason.UNKNOWN_CHANNEL]


def test_a_value_the_scale_pushes_out_of_range_is_unmapped() -> None:
    raw = spec_document()
    raw["companies"][0]["sites"][0]["devices"][0]["channels"][0]["scale"] = 1e300
    mapped, unmapped = enrich(message(("active_power_w", 5, 1e10), ("energy_kwh", 6, 1.0)), AT, snapshot(raw))
    assert [r.ch for r in mapped] == ["energy_kwh"]
    assert [(u.ch, u.reason) for u in unmapped] == [("active_power_w", UnmappedReason.VALUE_OUT_OF_RANGE)]


def test_enrichment_is_pure() -> None:
    import ast
    from pathlib import Path

    from wenu_stream.catalog import directory, enrichment

    for module in (enrichment, directory):
        tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {
            str(node.module).split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        }
        assert not imported & {"os", "time", "sqlite3", "psycopg", "boto3", "aiobotocore", "datetime"}
        assert "wenu_stream.catalog.store" not in Path(str(module.__file__)).read_text(encoding="utf-8")
