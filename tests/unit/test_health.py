"""Health endpoints: a real HTTP server on loopback with a fresh registry and a settable clock."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from wenu_stream.health import Health, serve
from wenu_stream.metrics import Metrics
from wenu_stream.testing import SettableClock


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Health, Metrics, SettableClock]]:
    registry, clock = CollectorRegistry(), SettableClock(100_000)
    health, metrics = Health(clock.seconds), Metrics.create(registry)
    server = serve(0, registry, health, host="127.0.0.1")
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", health, metrics, clock
    finally:
        server.shutdown()
        server.server_close()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_readiness_follows_the_last_durable_write_of_each_sink(
    endpoint: tuple[str, Health, Metrics, SettableClock],
) -> None:
    url, health, _, clock = endpoint
    assert get(url + "/healthz") == (200, "ok\n")
    assert get(url + "/readyz") == (200, "ready\n")
    health.note("stats", ok=False, error="ProvisionedThroughputExceeded")
    clock.now += 2.5
    health.note("stats", ok=False, error="again")  # still failing since the first failure
    health.note("state", ok=True)
    status, body = get(url + "/readyz")
    assert status == 503 and body == "sink stats failing for 2.5s: ProvisionedThroughputExceeded\n"
    assert get(url + "/healthz")[0] == 200  # a failing sink is not a reason to restart
    health.note("stats", ok=True)
    assert get(url + "/readyz") == (200, "ready\n")
    health.stopping()
    assert get(url + "/readyz") == (503, "stopping\n")


def test_metrics_are_served_next_to_the_probes(endpoint: tuple[str, Health, Metrics, SettableClock]) -> None:
    url, _, metrics, _ = endpoint
    metrics.records.labels("processing", "accepted").inc(3)
    status, body = get(url + "/metrics")
    assert status == 200 and 'wenu_records_total{app="processing",outcome="accepted"} 3.0' in body
    assert get(url + "/nope")[0] == 404


def test_problems_count_after_their_grace_and_calls_in_flight_after_stall_s(
    endpoint: tuple[str, Health, Metrics, SettableClock],
) -> None:
    url, health, _, clock = endpoint
    health.stall_s = 10.0
    health.report("reads of shard-1", ok=False, error="ThrottlingException", grace_s=5.0)
    token = health.calls.start("s3 PutObject")
    clock.now += 4.0
    assert get(url + "/readyz") == (200, "ready\n")  # within the grace, a young call
    clock.now += 7.0
    status, body = get(url + "/readyz")
    assert status == 503
    assert (
        body
        == "reads of shard-1 failing for 11.0s: ThrottlingException\ncall s3 PutObject in flight for 11.0s\n"
    )
    health.calls.end(token)
    health.report("lease shard-1", ok=False, error="not renewed for 6.0s")
    health.forget("reads of shard-1")
    assert get(url + "/readyz") == (503, "lease shard-1 failing for 0.0s: not renewed for 6.0s\n")
    health.report("lease shard-1", ok=True)
    assert get(url + "/readyz") == (200, "ready\n")
