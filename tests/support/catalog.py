"""Catalog documents shared by the tests: the example document of docs/catalog.md."""

from __future__ import annotations

import copy
from typing import Any

SPEC_DOCUMENT: dict[str, Any] = {
    "companies": [
        {
            "id": "acme",
            "name": "ACME S.A.",
            "sites": [
                {
                    "id": "acme-hq",
                    "name": "Casa Matriz",
                    "timezone": "America/Santiago",
                    "devices": [
                        {
                            "id": "EM-000001",
                            "channels": [
                                {
                                    "ch": "active_power_w",
                                    "series": "acme-hq.main.power",
                                    "kind": "gauge",
                                    "unit": "W",
                                    "scale": 1.0,
                                    "offset": 0.0,
                                },
                                {
                                    "ch": "energy_kwh",
                                    "series": "acme-hq.main.energy",
                                    "kind": "counter",
                                    "unit": "kWh",
                                    "scale": 1.0,
                                    "offset": 0.0,
                                },
                            ],
                        }
                    ],
                }
            ],
        }
    ],
    "alarm_rules": [
        {
            "id": "hq-power-high",
            "series": "acme-hq.main.power",
            "type": "threshold",
            "op": ">",
            "value": 50000,
            "clear": 45000,
            "for_s": 120,
            "severity": "critical",
        },
        {
            "id": "hq-power-silent",
            "series": "acme-hq.main.power",
            "type": "no_data",
            "after_s": 900,
            "severity": "warning",
        },
        {
            "id": "hq-power-jump",
            "series": "acme-hq.main.power",
            "type": "rate_of_change",
            "max_abs_delta_per_min": 20000,
            "severity": "major",
        },
        {
            "id": "hq-power-stuck",
            "series": "acme-hq.main.power",
            "type": "stuck",
            "count": 30,
            "severity": "minor",
        },
        {
            "id": "hq-daily-energy",
            "series": "acme-hq.main.energy",
            "type": "consumption",
            "window": "1d",
            "max": 800,
            "severity": "major",
        },
    ],
}


def spec_document() -> dict[str, Any]:
    """A fresh copy of the example document of docs/catalog.md."""
    return copy.deepcopy(SPEC_DOCUMENT)
