"""Benchmark: API latency on the local stack, p50/p99, each next to its floor measured in the same run.

Run: ``.venv/bin/python bench/api.py [--devices 200] [--reads 300] [--applies 60]``

Starts moto + kinesalite and a PostgreSQL server (fsync off, as the tests run it), imports the simulated
fleet's catalog (``--devices`` meters, their series and rules), stores a day of 15-minute stats windows for
one series with the real stats sink, and serves the API with uvicorn on loopback. Then, sequentially over
HTTP (httpx, one keep-alive connection, a development token):

- stats read: ``GET /api/v1/series/{s}/stats?window=15m`` over the last 24 h (96 windows, one DynamoDB
  Query); floor: the same Query with boto3 directly;
- change-set apply: ``POST /api/v1/changesets`` (a draft raising one rule's threshold) then
  ``POST .../apply`` (validated whole, applied atomically as a new version with its document and audit entry);
  the apply call is timed; floor: the same change through ``catalog.workspace.submit`` in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(name: str, samples: list[float], floor: list[float]) -> None:
    p50, p99, f50, f99 = (
        pct(samples, 0.5) * 1000,
        pct(samples, 0.99) * 1000,
        pct(floor, 0.5) * 1000,
        pct(floor, 0.99) * 1000,
    )
    print(
        f"{name:<22} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms   floor p50 {f50:7.2f} ms  p99 {f99:7.2f} ms"
        f"   ratio p50 {p50 / f50:5.1f}x  (n={len(samples)})",
        flush=True,
    )


async def store_windows(config: Any, series: str, info: Any, now_ms: int) -> None:
    from aiobotocore.session import get_session

    from wenu_stream.aws.stats_store import DynamoStatsStore
    from wenu_stream.model import Position, SeriesReading
    from wenu_stream.stats.sink import StatsSink

    async with get_session().create_client("dynamodb") as ddb:
        sink = StatsSink(DynamoStatsStore(ddb, config.stats.table), clock=lambda: now_ms)
        start = now_ms - 86_400_000
        readings = [
            SeriesReading(
                series=series,
                company=info.company,
                site=info.site,
                timezone=info.timezone,
                kind=info.kind,
                unit=info.unit,
                device="bench",
                ch="c",
                seq=i,
                index=0,
                t=start + i * 60_000,
                value=float(1000 + i % 97),
                raw_value=0.0,
                position=Position(i + 1),
            )
            for i in range(1440)
        ]
        for i in range(0, len(readings), 500):
            await sink.write_readings("shardId-0", readings[i : i + 500])
        await sink.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--applies", type=int, default=60)
    args = parser.parse_args()

    import boto3
    import httpx
    import uvicorn

    from wenu_stream.aws.provision import ensure_stats_table
    from wenu_stream.bootstrap import api_services
    from wenu_stream.catalog.changes import ChangeSet, decode_operations
    from wenu_stream.catalog.document import validate
    from wenu_stream.catalog.store import CatalogStore
    from wenu_stream.catalog.workspace import submit
    from wenu_stream.cli.catalog import import_as_change_set
    from wenu_stream.config import load_config
    from wenu_stream.devtools.emulator import StackSpec, start_stack, stop_stack
    from wenu_stream.devtools.emulator.postgres import start_postgres, stop_postgres
    from wenu_stream.devtools.simulate import SimulationConfig, fleet_catalog
    from wenu_stream.log import configure_logging
    from wenu_stream.stats.items import window_pk
    from wenu_stream.web.app import create_app
    from wenu_stream.web.auth import DevTokens

    configure_logging("warning")
    import logging

    for name in ("httpx", "uvicorn", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.WARNING)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    stack = start_stack(StackSpec(run_dir=str(run_dir / "stack")))
    os.environ.update(stack.env())
    pg = start_postgres()
    server = None
    try:
        config = load_config(
            {},
            {
                "catalog.url": pg.dsn,
                "stats.table": "bench-stats",
                "api.port": 0,
                "api.dev_secret_file": str(run_dir / "secret"),
            },
        )
        ensure_stats_table(config, {})
        checked = validate(fleet_catalog(SimulationConfig(devices=args.devices)))
        assert checked.document is not None, checked.problems
        with CatalogStore(pg.dsn) as store:
            import_as_change_set(store, checked.document, author="bench", reason="fleet")
            snapshot = store.snapshot()
        series = sorted(s for s, i in snapshot.series.items() if i.kind == "gauge")[0]
        rule = next(r for r in snapshot.rules if r.series is not None and type(r).__name__ == "ThresholdRule")
        now_ms = int(time.time() * 1000)
        asyncio.run(store_windows(config, series, snapshot.series[series], now_ms))
        print(
            f"catalog: {args.devices} devices, {len(snapshot.series)} series, {len(snapshot.rules)} rules; "
            f"stats: 96 windows of {series}",
            flush=True,
        )

        services = api_services(config)
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(services), host="127.0.0.1", port=port, log_config=None, access_log=False
            )
        )
        threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True).start()
        while not server.started:
            time.sleep(0.02)
        token = DevTokens.from_file(config.api.dev_secret_file).mint(
            subject="bench",
            role="admin",
            company=None,
            now_s=int(time.time()),
            ttl_s=3600,
            roles_claim=config.api.roles_claim,
            company_claim=config.api.company_claim,
        )
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
        )
        params = {"window": "15m", "from": _iso(now_ms - 86_400_000), "to": _iso(now_ms + 1)}
        for _ in range(20):  # warm-up: connections, caches
            assert client.get(f"/api/v1/series/{series}/stats", params=params).status_code == 200
        reads = []
        for _ in range(args.reads):
            started = time.perf_counter()
            got = client.get(f"/api/v1/series/{series}/stats", params=params)
            reads.append(time.perf_counter() - started)
            assert got.status_code == 200 and len(got.json()["items"]) >= 96
        ddb, floor_reads = boto3.client("dynamodb"), []
        for _ in range(args.reads):
            started = time.perf_counter()
            ddb.query(
                TableName="bench-stats",
                KeyConditionExpression="pk = :pk AND sk BETWEEN :a AND :b",
                ExpressionAttributeValues={
                    ":pk": {"S": window_pk(series, "15m")},
                    ":a": {"N": str(now_ms - 86_400_000)},
                    ":b": {"N": str(now_ms)},
                },
            )
            floor_reads.append(time.perf_counter() - started)
        row("stats read (96 win.)", reads, floor_reads)

        applies = []
        for i in range(args.applies):
            op = {"op": "update", "kind": "rule", "id": rule.id, "set": {"value": 100_000 + i}}
            draft = client.post(
                "/api/v1/changesets", json={"reason": f"bench {i}", "operations": [op]}
            ).json()
            started = time.perf_counter()
            got = client.post(f"/api/v1/changesets/{draft['draft']['id']}/apply")
            applies.append(time.perf_counter() - started)
            assert got.status_code == 200, got.text
        floor_applies = []
        with CatalogStore(pg.dsn) as store:
            for i in range(args.applies):
                ops, _ = decode_operations(
                    [{"op": "update", "kind": "rule", "id": rule.id, "set": {"value": 200_000 + i}}]
                )
                started = time.perf_counter()
                submit(
                    store, ChangeSet(base_version=store.version(), reason="floor", operations=ops), author="b"
                )
                floor_applies.append(time.perf_counter() - started)
        row("change-set apply", applies, floor_applies)
        print(
            f"(median over the run: read {statistics.median(reads) * 1000:.2f} ms, "
            f"apply {statistics.median(applies) * 1000:.2f} ms)",
            flush=True,
        )
        client.close()
        services.catalog.close()
        return 0
    finally:
        if server is not None:
            server.should_exit = True
            time.sleep(0.3)
        stop_postgres(pg)
        stop_stack(stack)


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ms / 1000))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())
