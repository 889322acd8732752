"""The native worker over real streams with fake processors: settings, a started worker, records put by shard,
and a deadline-bound wait. Shared by the driver, fault and split tests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import boto3
from prometheus_client import CollectorRegistry

from tests.support.processors import FakeShardProcessor, Journal
from wenu_stream.config import Config, load_config
from wenu_stream.drivers.native.leases import read_leases
from wenu_stream.drivers.native.worker import WorkerResult, run_worker
from wenu_stream.metrics import Metrics

POISON = b"poison"


def settings(name: str, worker: str, **extra: Any) -> Config:
    values = {
        "kinesis.stream": name,
        "lease.table": name,
        "lease.worker_id": worker,
        "lease.failover_ms": 2000,
        "kinesis.poll_interval_ms": 50,
        "lease.discovery_interval_ms": 500,
    }
    return load_config({}, values | extra)


def start(
    config: Config, journal: Journal, stop: asyncio.Event | None = None, **kw: Any
) -> asyncio.Task[WorkerResult]:
    def factory(shard_id: str) -> FakeShardProcessor:
        return FakeShardProcessor(
            journal, shard_id, worker=config.worker_id, flush_pending=True, poison=POISON, **kw
        )

    return asyncio.create_task(
        run_worker(config, factory, metrics=Metrics.create(CollectorRegistry()), stop=stop)
    )


def put(
    name: str, count: int, shards: int, data: Callable[[int], bytes] = lambda i: os.urandom(16)
) -> dict[str, list[str]]:
    """Put ``count`` records spread evenly over ``shards`` shards; return sequence numbers per shard, in order."""
    kinesis, by_shard = boto3.client("kinesis"), {}
    step = 2**128 // shards
    entries = [
        {"Data": data(i), "PartitionKey": "k", "ExplicitHashKey": str((i % shards) * step + 1)}
        for i in range(count)
    ]
    for first in range(0, count, 500):
        out = kinesis.put_records(StreamName=name, Records=entries[first : first + 500])
        assert out.get("FailedRecordCount", 0) == 0
        for result in out["Records"]:
            by_shard.setdefault(result["ShardId"], []).append(result["SequenceNumber"])
    return by_shard


async def eventually(condition: Callable[[], Awaitable[bool] | bool], timeout: float = 60.0) -> None:
    """Wait until ``condition()`` holds (a deadline so a broken driver fails instead of hanging)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert loop.time() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.1)


async def owners(table: str) -> dict[str, str | None]:
    """Lease owners by shard ({} until the worker created the table)."""
    try:
        leases = await asyncio.to_thread(read_leases, table)
    except boto3.client("dynamodb").exceptions.ResourceNotFoundException:
        return {}
    return {lease.lease_key: lease.lease_owner for lease in leases}
