"""Faults no emulator produces on demand (throttling, expired iterators), injected around the real reader."""

from __future__ import annotations

import asyncio

import pytest
import structlog
from aiobotocore.session import get_session
from prometheus_client import CollectorRegistry

from tests.fixtures.aws import create_stream
from tests.support.driver import eventually, put, settings
from tests.support.processors import FakeShardProcessor, Journal
from wenu_stream.drivers.native.consumer import STOPPED, HeldLease, ShardConsumer, WorkerState
from wenu_stream.drivers.native.kinesis import (
    ExpiredIteratorError,
    FastGetRecords,
    GetRecordsOutput,
    RetryableError,
)
from wenu_stream.drivers.native.leases import Lease, LeaseTable
from wenu_stream.log import get_logger
from wenu_stream.metrics import Metrics

pytestmark = pytest.mark.integration


class FaultyReader:
    """Raises the scripted faults first, then reads for real."""

    def __init__(self, real: FastGetRecords, faults: list[Exception]) -> None:
        self.real, self.faults, self.iterators = real, faults, []

    async def get_records(self, iterator: str, limit: int = 10_000) -> GetRecordsOutput:
        self.iterators.append(iterator)
        if self.faults:
            raise self.faults.pop(0)
        return await self.real.get_records(iterator, limit)


async def test_throttling_and_expired_iterators_are_retried_without_losing_a_record(
    aws_stack: object, unique_name: str
) -> None:
    (shard,) = create_stream(unique_name, 1)
    first = put(unique_name, 10, 1)[shard]
    config = settings(unique_name, "w1", **{"kinesis.max_records": 4})
    session, journal, stop = get_session(), Journal(), asyncio.Event()
    async with session.create_client("dynamodb") as ddb, session.create_client("kinesis") as kin:
        table = LeaseTable(ddb, unique_name)
        await table.ensure()
        await table.create(Lease(lease_key=shard))
        lease = await table.take(Lease(lease_key=shard), "w1")
        assert lease is not None
        real = await FastGetRecords.open(session, kin)
        faults: list[Exception] = [
            RetryableError("ProvisionedThroughputExceededException"),
            RetryableError("HTTP503"),
            ExpiredIteratorError("ExpiredIteratorException"),
        ]
        reader = FaultyReader(real, faults)
        state = WorkerState(
            config,
            table=table,
            fast=reader,
            kinesis_client=kin,  # type: ignore[arg-type]
            metrics=Metrics.create(registry := CollectorRegistry()),
            stop=stop,
            log=get_logger("test"),
        )
        consumer = ShardConsumer(
            state, HeldLease(lease, table), FakeShardProcessor(journal, shard, flush_pending=True)
        )
        with structlog.testing.capture_logs() as logs:
            task = asyncio.create_task(consumer.run())
            await eventually(lambda: len(journal.seen(shard)) == 10)
            reader.faults.append(
                ExpiredIteratorError("ExpiredIteratorException")
            )  # mid-stream: resume after the last record
            second = put(unique_name, 5, 1)[shard]
            await eventually(lambda: len(journal.seen(shard)) == 15)
            stop.set()
            assert await task == STOPPED
        await real.close()
    assert journal.seen(shard) == first + second
    events = [e["event"] for e in logs]
    assert events.count("kinesis_retry") == 2 and events.count("iterator_expired") == 2
    assert len(set(reader.iterators)) > 3  # a fresh iterator after each expiry
    errors = {
        kind: registry.get_sample_value("wenu_kinesis_read_errors_total", {"app": config.app, "kind": kind})
        for kind in ("throttled", "transient", "expired_iterator")
    }
    assert errors == {"throttled": 1, "transient": 1, "expired_iterator": 2}
