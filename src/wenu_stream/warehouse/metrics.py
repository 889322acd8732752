"""Metrics of one ``warehouse load`` run, pushed to a Prometheus Pushgateway.

A load is a batch job (a scheduled task), not a server Prometheus can scrape,
so each run pushes its outcome to the Pushgateway (``warehouse.pushgateway``)
under job ``wenu-warehouse-load`` and the target as grouping key. Every metric
is a gauge describing the last run; ``wenu_warehouse_last_success_timestamp_seconds``
is only pushed by a run that succeeded (the push adds to the group, so a failed
run leaves the last success in place), which is what the alert rule watches.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway

from wenu_stream.warehouse.loader import LoadSummary

JOB = "wenu-warehouse-load"


def run_registry(summary: LoadSummary | None, *, now_s: float) -> CollectorRegistry:
    """The gauges of one run: ``summary`` of a run that succeeded, None for one that failed."""
    r = CollectorRegistry()
    Gauge("wenu_warehouse_last_run_timestamp_seconds", "When the last load run ended", registry=r).set(now_s)
    Gauge(
        "wenu_warehouse_last_run_ok", "1 if the last load run loaded everything pending, else 0", registry=r
    ).set(0 if summary is None else 1)
    if summary is None:
        return r
    Gauge("wenu_warehouse_last_success_timestamp_seconds", "When a load run last succeeded", registry=r).set(
        now_s
    )
    manifests = Gauge(
        "wenu_warehouse_manifests", "Manifests of the last load run, by outcome", ["outcome"], registry=r
    )
    manifests.labels("loaded").set(sum(not m.skipped for m in summary.manifests))
    manifests.labels("skipped").set(sum(m.skipped for m in summary.manifests))
    Gauge(
        "wenu_warehouse_pending_files", "Staged files not yet loaded when the last run started", registry=r
    ).set(summary.pending_files)
    Gauge(
        "wenu_warehouse_rows_inserted",
        "Rows the last load run inserted (PostgreSQL; Redshift reports none)",
        registry=r,
    ).set(sum(m.rows_inserted or 0 for m in summary.manifests))
    return r


def push(url: str, target: str, registry: CollectorRegistry, timeout_s: float = 10.0) -> None:
    """Add the run's gauges to the Pushgateway group ``job=wenu-warehouse-load, target=...``."""
    pushadd_to_gateway(url, job=JOB, registry=registry, grouping_key={"target": target}, timeout=timeout_s)
