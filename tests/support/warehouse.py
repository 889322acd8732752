"""Warehouse readings shared by the tests: one enriched reading, any field changed."""

from __future__ import annotations

from wenu_stream.model import Position, SeriesReading


def reading(**changes: object) -> SeriesReading:
    base: dict[str, object] = {
        "series": "acme/hq/power",
        "company": "acme",
        "site": "hq",
        "timezone": "Europe/Paris",
        "kind": "gauge",
        "unit": "W",
        "device": "EM-1",
        "ch": "active_power_w",
        "seq": 7,
        "index": 1,
        "t": 1764300000123,
        "value": 1532.4,
        "raw_value": 15324.0,
        "position": Position(49650000000000000000000000000000000000000000000000000001, 3),
    }
    base.update(changes)
    return SeriesReading(**base)  # type: ignore[arg-type]
