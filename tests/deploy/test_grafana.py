"""The Grafana dashboard and its provisioning files: file-provisionable, one unit per panel, the panels ops need.

Every query also runs on a real Prometheus in tests/integration/test_prometheus.py (dashboard_queries).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import ROOT

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = json.loads((GRAFANA / "wenu-stream.json").read_text())
PANELS = [p for p in DASHBOARD["panels"] if p["type"] != "row"]
DS = {"type": "prometheus", "uid": "${datasource}"}
# What a query measures, by its shape, and the Grafana units that may show it.
UNITS = {
    "seconds": {"s"},
    "millis": {"ms"},
    "per_second": {"rps"},
    "per_minute": {"opm"},
    "ratio": {"percentunit"},
    "count": {"short", "none"},
}


def measures(expr: str) -> str:
    """What one query measures (our histograms are all in seconds; counters are rated)."""
    if "histogram_quantile" in expr or "time() -" in expr or re.search(r"wenu_\w+_seconds\b(?!_)", expr):
        return "seconds"
    if "millis_behind" in expr:
        return "millis"
    if "rate(" in expr:
        if re.search(r"\)\)\s*/\s*sum", expr):
            return "ratio"
        return "per_minute" if expr.rstrip().endswith("* 60") else "per_second"
    return "count"


def test_dashboard_is_file_provisionable_through_a_datasource_variable() -> None:
    text = json.dumps(DASHBOARD)
    assert "__inputs" not in DASHBOARD and "DS_PROMETHEUS" not in text
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    assert variables["app"]["datasource"] == DS
    for panel in PANELS:
        assert panel["datasource"] == DS, panel["title"]
        assert all(t["datasource"] == DS for t in panel["targets"]), panel["title"]


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: p["title"])
def test_no_panel_mixes_units(panel: dict[str, Any]) -> None:
    kinds = {measures(t["expr"]) for t in panel["targets"]}
    assert len(kinds) == 1, kinds
    assert panel["fieldConfig"]["defaults"]["unit"] in UNITS[kinds.pop()]


def test_panels_for_the_warehouse_backlog_last_success_read_errors_and_targets() -> None:
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in PANELS}
    needed = {
        "wenu_warehouse_pending_files": "backlog",
        "time() - max by (target) (wenu_warehouse_last_success_timestamp_seconds)": "last successful load",
        "wenu_kinesis_read_errors_total": "Kinesis read errors",
        'up{job=~"wenu-.*"}': "scrape targets",
        "wenu_leases_held": "leases",
    }
    for fragment, panel in needed.items():
        assert any(fragment in e for e in exprs.values()), panel
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))


def test_provisioning_names_the_data_source_the_dashboard_defaults_to() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "wenu.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["jsonData"]["sigV4Auth"] is True
    assert source["url"] == "${WENU_PROMETHEUS_QUERY_URL}"
    default = next(v for v in DASHBOARD["templating"]["list"] if v["name"] == "datasource")["current"]
    assert default["value"] == source["uid"] == source["name"]
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "wenu.yml").read_text())
    assert providers["providers"][0]["type"] == "file"
