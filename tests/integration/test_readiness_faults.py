"""Readiness under faults of each service in turn (SNS with the alarms worker): /readyz goes 503 with the reason during the fault, 200 after it.

A processing worker (``wenu-stream run``'s ``consume``, in process) reads one shard while a fault proxy in front of
one service (S3, DynamoDB or Kinesis) cuts every connection, then holds every request (a black hole), then answers
every request with that service's throttling error; a chunk of readings arrives during each fault. Small deadlines
(``aws.*`` settings) keep it short. After the three faults the worker catches up, stops cleanly, and nothing is lost:
the shard's totals are what the simulator sent (accepted + duplicates + dead letters by reason), every dead letter
is stored once and every staged row once. The DynamoDB black hole lasts past half the failover time: the lease
renewals are late (logged, not ready), the lease expires locally, the shard stops unchecked and replays after.

``pytest tests/integration/test_readiness_faults.py -s`` prints, per fault, the seconds from the fault to 503, from
the restore to 200, and the first reason /readyz gave.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import msgspec
import pytest
import structlog

from tests.fixtures.aws import create_stream
from tests.integration.test_alarms_app import alarms_env, expected_moves, moves, prepare_alarms, received
from tests.support.driver import eventually
from tests.support.effects import keys_under, last_checkpoints, tail_sequences
from tests.support.fault_proxy import FaultProxy, throttling
from tests.support.probes import readyz
from tests.support.records import KEYS
from tests.support.scenario import FAULTS, prepare, run_config, write_keyring
from wenu_stream.cli.run import consume
from wenu_stream.config import Config
from wenu_stream.devtools.emulator.stack import free_port
from wenu_stream.devtools.simulate import SimulationConfig, Tally, fleet_catalog, generate, parse_faults
from wenu_stream.devtools.simulate.generator import expected_alarms
from wenu_stream.devtools.simulate.producer import KinesisProducer, Pacer, put_all
from wenu_stream.ops.report import dead_letter_counts, shard_totals, sum_totals
from wenu_stream.warehouse.rows import decode_csv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Small deadlines: a call in flight for 0.5 s makes the worker not ready, and ends after 1.5 s.
DEADLINES = {
    "WENU_AWS_STALL_S": 0.5,
    "WENU_AWS_CALL_DEADLINE_S": 1.5,
    "WENU_AWS_READ_TIMEOUT_S": 1,
    "WENU_AWS_CONNECT_TIMEOUT_S": 1,
    "WENU_KINESIS_STOP_GRACE_S": 5,
    "WENU_LEASE_FAILOVER_MS": 3000,  # a late lease is reported from 1.5 s to its local expiry at 3 s
}
# service -> (the SDK's endpoint variable routed through the proxy, the variable of the real server, protocol)
SERVICES = {
    "s3": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "s3"),
    "dynamodb": ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB", "json"),
    "kinesis": ("AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_KINESIS", "json"),
}
FAULT_MODES: dict[str, Callable[[FaultProxy, str], None]] = {
    "cut": lambda proxy, _: proxy.cut(),
    "hold": lambda proxy, _: proxy.hold(),
    "throttle": lambda proxy, protocol: proxy.answer(throttling(protocol)),
}


async def until_ready(port: int, status: int, timeout: float) -> tuple[float, str]:
    """Poll /readyz until it answers ``status``: (seconds it took, its body)."""
    started = time.monotonic()
    while True:
        code, body = await asyncio.to_thread(readyz, port)
        if code == status:
            return time.monotonic() - started, body
        assert time.monotonic() - started < timeout, (
            f"/readyz never answered {status} (last {code}: {body!r})"
        )
        await asyncio.sleep(0.1)


async def watch_reasons(port: int, seen: set[str]) -> None:
    """Collect every line /readyz gives until cancelled (a reason can be brief: a late lease one lasts until
    the lease expires locally, about a third of the failover time)."""
    while True:
        seen.update((await asyncio.to_thread(readyz, port))[1].splitlines())
        await asyncio.sleep(0.05)


def staged_rows_with_repeats(config: Config) -> list[tuple[object, ...]]:
    s3, rows = boto3.client("s3"), []
    for key in keys_under(config, config.warehouse.staging_prefix):
        body = gzip.decompress(s3.get_object(Bucket=config.sinks.bucket, Key=key)["Body"].read())
        rows += [msgspec.structs.astuple(row) for row in decode_csv(body)]
    return rows


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_readiness_follows_each_fault_of_a_service_and_nothing_is_lost(
    aws_stack: object, unique_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: str
) -> None:
    routed, real, protocol = SERVICES[service]
    port, keyring = free_port(), write_keyring(tmp_path / "keys.json", KEYS)
    create_stream(unique_name, 1)
    producer = KinesisProducer(unique_name)
    sim = SimulationConfig(
        devices=6, interval_s=1.0, duration_s=40, seed=6, aggregate=0, faults=parse_faults(FAULTS)
    )
    records, tally = list(generate(sim, KEYS)), Tally()
    chunks = [records[i::4] for i in range(4)]  # each chunk in order of emission; one before, one per fault
    put_all(chunks[0], producer.put, Pacer("none"), tally=tally)
    env = run_config(unique_name, f"{unique_name}-w", keyring, WENU_METRICS_PORT=port, **DEADLINES)
    config = prepare(env, fleet_catalog(sim))
    target = urlsplit(os.environ[real])
    proxy = FaultProxy(target.hostname or "127.0.0.1", target.port or 80)
    monkeypatch.setenv(routed, proxy.url)  # the worker's clients of this service only
    stop, timings, watchers = asyncio.Event(), [], []
    worker = asyncio.create_task(consume(config, stop=stop))
    logs = structlog.testing.capture_logs()
    events: list[dict[str, Any]] = logs.__enter__()
    try:
        await eventually(
            lambda: asyncio.to_thread(lambda: bool(last_checkpoints(config.lease_table, digits=True)))
        )
        await until_ready(port, 200, 30)
        for mode, chunk in zip(FAULT_MODES, chunks[1:], strict=True):
            FAULT_MODES[mode](proxy, protocol)
            seen: set[str] = set()
            watchers.append(watcher := asyncio.create_task(watch_reasons(port, seen)))
            await asyncio.to_thread(put_all, chunk, producer.put, Pacer("none"), tally=tally)
            to_unready, reason = await until_ready(port, 503, 60)
            if (service, mode) == ("dynamodb", "hold"):  # held past half the failover time: renewals are late
                await eventually(lambda: any(e["event"] == "lease_expired_locally" for e in events), 20)
                assert any(line.startswith("lease shardId-000000000000 failing") for line in seen), seen
            watcher.cancel()
            proxy.restore()
            to_ready, _ = await until_ready(port, 200, 60)
            timings.append((mode, to_unready, to_ready, reason.splitlines()[0]))
            assert not worker.done()  # nothing gave up
        tails = tail_sequences(unique_name)
        await eventually(lambda: asyncio.to_thread(lambda: last_checkpoints(config.lease_table) == tails))
    finally:
        for watcher in watchers:
            watcher.cancel()
        stopped = time.monotonic()
        stop.set()
        code = await asyncio.wait_for(worker, timeout=60)
        proxy.close()
        monkeypatch.undo()  # the checks below read the real servers
        logs.__exit__(None, None, None)
    for mode, to_unready, to_ready, reason in timings:
        print(
            f"{service} {mode}: 503 after {to_unready:.1f}s ({reason}); 200 {to_ready:.1f}s after the restore"
        )
    print(f"{service}: clean stop in {time.monotonic() - stopped:.1f}s")
    assert code == 0
    expected = tally.result()
    totals = sum_totals(shard_totals(config))
    assert (totals.records, totals.accepted, totals.duplicates) == (
        expected.records,
        expected.accepted,
        expected.duplicates,
    )
    assert totals.rejected == expected.rejected == dead_letter_counts(config)
    rows = staged_rows_with_repeats(config)
    assert rows and len(rows) == len(set(rows))  # every reading staged once
    assert all(_names_service(service, reason) for _, _, _, reason in timings), timings
    warned = {e["event"] for e in events}
    assert "call_timed_out" in warned or service != "s3"
    assert {"lease_renewal_late", "lease_expired_locally"} <= warned or service != "dynamodb"


def _names_service(service: str, reason: str) -> bool:
    """The reason /readyz gave names what failed: the service's calls, a sink, reads or leases (lease coordination
    lists the shards on Kinesis and scans the lease table on DynamoDB: its reason names the call)."""
    allowed: dict[str, tuple[str, ...]] = {
        "s3": ("call s3 ", "sink "),
        "dynamodb": ("call dynamodb ", "sink ", "lease "),
        "kinesis": ("call kinesis ", "reads of "),
    }
    coordination = reason.startswith("lease coordination failing") and f"{service} " in reason
    return reason.startswith(allowed[service]) or coordination


async def test_readiness_follows_each_sns_fault_and_every_notification_goes_out_once(
    aws_stack: object, unique_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alarms worker with SNS cut, held, then throttled; each fault starts before readings that make
    transitions arrive. Every expected notification reaches the queue exactly once."""
    port, keyring = free_port(), write_keyring(tmp_path / "keys.json", KEYS)
    create_stream(unique_name, 1)
    producer = KinesisProducer(unique_name)
    sim = SimulationConfig(
        devices=20,
        interval_s=1.0,
        duration_s=40,
        seed=5,
        aggregate=0,
        anomalies=True,
        faults=parse_faults(FAULTS),
    )
    records, expected = list(generate(sim, KEYS)), expected_alarms(sim)
    times = sorted({e.at for e in expected})
    cuts = [times[len(times) * k // 4] for k in (1, 2, 3)]
    assert len(set(cuts)) == 3, times  # each fault has transitions of its own to publish
    bounds = [-1, *cuts, 2**63]
    segments = [[r for r in records if lo <= r.emit_ms < hi] for lo, hi in itertools.pairwise(bounds)]
    put_all(segments[0], producer.put, Pacer("none"))
    env = alarms_env(unique_name, f"{unique_name}-a", keyring, WENU_METRICS_PORT=port, **DEADLINES)
    config, queue = prepare_alarms(env, f"{unique_name}-a", sim)
    moto = urlsplit(os.environ["AWS_ENDPOINT_URL"])
    proxy = FaultProxy(moto.hostname or "127.0.0.1", moto.port or 80)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", proxy.url)
    stop, timings = asyncio.Event(), []
    worker = asyncio.create_task(consume(config, stop=stop))
    try:
        await eventually(
            lambda: asyncio.to_thread(lambda: bool(last_checkpoints(config.lease_table, digits=True)))
        )
        await until_ready(port, 200, 30)
        for mode, segment in zip(FAULT_MODES, segments[1:], strict=True):
            # Caught up first: a Publish in flight when the fault starts may reach SNS with its answer lost, and
            # its retry then delivers it twice (the standard topic's documented window; a FIFO topic closes it).
            tails = tail_sequences(unique_name)
            await eventually(
                lambda tails=tails: asyncio.to_thread(lambda: last_checkpoints(config.lease_table) == tails)
            )
            FAULT_MODES[mode](proxy, "query")
            await asyncio.to_thread(put_all, segment, producer.put, Pacer("none"))
            to_unready, reason = await until_ready(port, 503, 60)
            proxy.restore()
            to_ready, _ = await until_ready(port, 200, 60)
            timings.append((mode, to_unready, to_ready, reason.splitlines()[0]))
            assert not worker.done()
        tails = tail_sequences(unique_name)
        await eventually(lambda: asyncio.to_thread(lambda: last_checkpoints(config.lease_table) == tails))
    finally:
        stop.set()
        code = await asyncio.wait_for(worker, timeout=60)
        proxy.close()
        monkeypatch.undo()
    for mode, to_unready, to_ready, reason in timings:
        print(f"sns {mode}: 503 after {to_unready:.1f}s ({reason}); 200 {to_ready:.1f}s after the restore")
    assert code == 0
    got = moves(received(queue))
    assert set(got.values()) == {1}  # no notification twice
    assert got.keys() >= expected_moves(expected).keys()  # none lost (a silence at the end may add a firing)
    assert all(reason.startswith(("sns Publish", "call sns Publish")) for *_, reason in timings), timings
