"""Prometheus metrics, one documented set named ``wenu_*`` with low-cardinality labels (never a device).

``Metrics.create(registry)`` builds them; tests pass a fresh ``CollectorRegistry``.
On the KCL path every shard is its own process: ``PROMETHEUS_MULTIPROC_DIR`` is
set by the container entrypoint and one exporter serves them all, so gauges
declare a ``multiprocess_mode``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics(NamedTuple):
    records: Counter  # app, outcome: accepted | rejected | duplicate
    dead_letters: Counter  # app, reason
    late_readings: Counter  # app
    batches: Histogram  # app: seconds from batch start to durable
    sink_seconds: Histogram  # app, sink
    sink_failures: Counter  # app, sink
    checkpoints: Counter  # app
    checkpoint_age: Gauge  # app, shard: seconds the checkpoint has lagged what was handed to the processor
    unready_until: Gauge  # app, shard: epoch s until which a KCL shard process is not ready (0: ready)
    millis_behind: Gauge  # app, shard
    leases_held: Gauge  # app
    stats_writes: Counter  # app
    notifications: Counter  # severity, state
    notification_mark: (
        Histogram  # seconds from SNS accepting a notification to the ledger marking it published
    )
    catalog_age: Gauge  # app: seconds since the catalog cache was refreshed
    quarantined: Counter  # app
    kinesis_read_errors: Counter  # app, kind: throttled | transient | expired_iterator (native driver)

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        """Register every metric on ``registry`` (a fresh one in tests)."""
        r = registry if registry is not None else CollectorRegistry()
        return cls(
            records=Counter("wenu_records", "User records by outcome", ["app", "outcome"], registry=r),
            dead_letters=Counter(
                "wenu_dead_letters", "Records dead-lettered, by reason", ["app", "reason"], registry=r
            ),
            late_readings=Counter(
                "wenu_late_readings", "Readings older than the allowed lateness", ["app"], registry=r
            ),
            batches=Histogram(
                "wenu_batch_seconds",
                "Batch time from receipt to durable",
                ["app"],
                buckets=_LATENCY_BUCKETS,
                registry=r,
            ),
            sink_seconds=Histogram(
                "wenu_sink_seconds",
                "Time to make one batch durable in a sink",
                ["app", "sink"],
                buckets=_LATENCY_BUCKETS,
                registry=r,
            ),
            sink_failures=Counter(
                "wenu_sink_failures", "Sink writes that failed", ["app", "sink"], registry=r
            ),
            checkpoints=Counter("wenu_checkpoints", "Checkpoints written", ["app"], registry=r),
            unready_until=Gauge(
                "wenu_unready_until_seconds",
                "Epoch seconds until which the shard's process reports itself not ready (KCL path; 0: ready)",
                ["app", "shard"],
                registry=r,
                multiprocess_mode="max",
            ),
            checkpoint_age=Gauge(
                "wenu_checkpoint_age_seconds",
                "Seconds since the shard's last checkpoint",
                ["app", "shard"],
                registry=r,
                multiprocess_mode="max",
            ),
            millis_behind=Gauge(
                "wenu_millis_behind_latest",
                "MillisBehindLatest reported by GetRecords",
                ["app", "shard"],
                registry=r,
                multiprocess_mode="max",
            ),
            leases_held=Gauge(
                "wenu_leases_held",
                "Shard leases held by this worker",
                ["app"],
                registry=r,
                multiprocess_mode="sum",
            ),
            stats_writes=Counter("wenu_stats_writes", "Stats items written", ["app"], registry=r),
            notifications=Counter(
                "wenu_notifications",
                "Alarm notifications published",
                ["severity", "state"],
                registry=r,
            ),
            notification_mark=Histogram(
                "wenu_notification_mark_seconds",
                "Seconds between SNS accepting a notification and the ledger marking it (the re-send window)",
                registry=r,
                buckets=_LATENCY_BUCKETS,
            ),
            catalog_age=Gauge(
                "wenu_catalog_age_seconds",
                "Age of the catalog cache",
                ["app"],
                registry=r,
                multiprocess_mode="max",
            ),
            quarantined=Counter(
                "wenu_quarantined_readings", "Readings the catalog does not map", ["app"], registry=r
            ),
            kinesis_read_errors=Counter(
                "wenu_kinesis_read_errors",
                "Kinesis reads (GetShardIterator, GetRecords) that failed and were retried, by kind",
                ["app", "kind"],
                registry=r,
            ),
        )


class CheckpointClock:
    """How long the oldest record handed to a shard's processor has waited for a checkpoint.

    The value of ``wenu_checkpoint_age_seconds`` on both drivers: 0 while
    everything handed over is checkpointed (an idle shard is not stalled), and
    growing while a sink keeps failing or the processor hangs.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self.waiting_since: float | None = None

    def handed(self) -> None:
        """Records were handed to the processor."""
        if self.waiting_since is None:
            self.waiting_since = self._monotonic()

    def checkpointed(self) -> None:
        """Everything handed over so far is checkpointed."""
        self.waiting_since = None

    def age(self) -> float:
        return 0.0 if self.waiting_since is None else self._monotonic() - self.waiting_since
