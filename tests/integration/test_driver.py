"""The native driver against kinesalite (streams) and moto (lease table), one real worker or two."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import boto3
import pytest
from prometheus_client import CollectorRegistry

from tests.fixtures.aws import create_stream
from tests.support.driver import POISON, eventually, owners, put, settings, start
from tests.support.processors import FakeShardProcessor, Journal
from wenu_stream.drivers.native.leases import OWNER_INDEX, read_leases
from wenu_stream.drivers.native.worker import WorkerResult, run_worker
from wenu_stream.metrics import Metrics
from wenu_stream.model import KinesisRecord

pytestmark = pytest.mark.integration


@pytest.mark.slow
async def test_one_worker_reads_every_shard_in_order_and_checkpoints_the_last_record(
    aws_stack: object, unique_name: str
) -> None:
    create_stream(unique_name, 4)
    expected = put(unique_name, 400, 4)
    journal = Journal()
    result = await start(settings(unique_name, "w1", **{"kinesis.idle_exit_s": 1.0}), journal)
    assert result == WorkerResult(records=400, checkpoints=result.checkpoints, shards_ended=0, failed=False)
    assert {shard: journal.seen(shard) for shard in expected} == expected
    leases = read_leases(unique_name)
    assert {x.lease_key: x.checkpoint for x in leases} == {
        shard: seqs[-1] for shard, seqs in expected.items()
    }
    assert all(x.lease_owner is None for x in leases)  # released on the way out
    assert result.checkpoints >= 4


async def test_an_idle_exit_waits_until_every_processor_is_settled(
    aws_stack: object, unique_name: str
) -> None:
    """A processor waiting on another process (an alarm notification a killed worker had claimed) holds the idle
    exit up until it is settled: the exit does not leave that notification pending."""
    create_stream(unique_name, 1)
    expected = put(unique_name, 10, 1)
    started = time.monotonic()
    result = await start(
        settings(unique_name, "w1", **{"kinesis.idle_exit_s": 0.5}), Journal(), unsettled_s=3.0
    )
    assert result.records == 10 and not result.failed
    assert time.monotonic() - started >= 3.0
    assert [x.checkpoint for x in read_leases(unique_name)] == [seqs[-1] for seqs in expected.values()]


@pytest.mark.slow
async def test_lease_rows_follow_the_kcl_schema(aws_stack: object, unique_name: str) -> None:
    create_stream(unique_name, 2)
    put(unique_name, 10, 2)
    stop = asyncio.Event()
    task = start(settings(unique_name, "w1"), Journal(), stop)
    await eventually(lambda: _all_owned(unique_name, "w1", 2))
    items = boto3.client("dynamodb").scan(TableName=unique_name, ConsistentRead=True)["Items"]
    stop.set()
    await task
    for item in items:
        assert {k: next(iter(v)) for k, v in item.items()} == {
            "leaseKey": "S",
            "leaseOwner": "S",
            "leaseCounter": "N",
            "checkpoint": "S",
            "checkpointSubSequenceNumber": "N",
            "ownerSwitchesSinceCheckpoint": "N",
            "startingHashKey": "S",
            "endingHashKey": "S",
        }
    table = boto3.client("dynamodb").describe_table(TableName=unique_name)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["leaseKey"]
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == OWNER_INDEX
    assert [(k["AttributeName"], k["KeyType"]) for k in gsi["KeySchema"]] == [
        ("leaseOwner", "HASH"),
        ("leaseKey", "RANGE"),
    ]


async def _all_owned(table: str, owner: str, count: int) -> bool:
    current = await owners(table)
    return len(current) == count and all(o == owner for o in current.values())


@pytest.mark.slow
async def test_two_workers_share_four_shards_two_and_two(aws_stack: object, unique_name: str) -> None:
    create_stream(unique_name, 4)
    expected = put(unique_name, 200, 4)
    journal, stop = Journal(), asyncio.Event()
    first = start(settings(unique_name, "w1"), journal, stop)
    await eventually(lambda: _all_owned(unique_name, "w1", 4))
    second = start(settings(unique_name, "w2"), journal, stop)

    async def balanced() -> bool:
        counts = list((await owners(unique_name)).values())
        return sorted(counts, key=str) == ["w1", "w1", "w2", "w2"]

    await eventually(balanced)
    more = put(unique_name, 200, 4)
    await eventually(lambda: all(len(journal.seen(s)) >= len(expected[s]) + len(more[s]) for s in expected))
    stop.set()
    results = await asyncio.gather(first, second)
    assert not any(r.failed for r in results)
    for shard in expected:  # a stolen shard may replay a little, never skip
        assert set(journal.seen(shard)) == set(expected[shard] + more[shard])
    assert {x.lease_key: x.checkpoint for x in read_leases(unique_name)} == {s: more[s][-1] for s in expected}


@pytest.mark.slow
async def test_a_dead_workers_leases_expire_and_the_other_resumes_from_the_checkpoint(
    aws_stack: object, unique_name: str
) -> None:
    create_stream(unique_name, 2)
    before = put(unique_name, 100, 2)
    journal, stop = Journal(), asyncio.Event()
    dead = start(settings(unique_name, "dead"), journal, stop)
    await eventually(lambda: all(len(journal.seen(s)) == len(before[s]) for s in before))
    await eventually(lambda: _all_owned(unique_name, "dead", 2))
    dead.cancel()  # a crash: nothing flushed, nothing released
    with pytest.raises(asyncio.CancelledError):
        await dead
    after = put(unique_name, 100, 2)
    survivor = start(settings(unique_name, "alive"), journal, stop)
    await eventually(lambda: all(len(journal.seen(s)) >= len(before[s]) + len(after[s]) for s in before))
    await eventually(lambda: _all_owned(unique_name, "alive", 2))
    stop.set()
    assert not (await survivor).failed
    for worker, shard, (event, value) in journal.calls:
        if worker == "alive" and event == "initialize":  # resumed right after the dead worker's checkpoint
            assert value[0] == before[shard][-1]
    for shard in before:
        assert journal.seen(shard) == before[shard] + after[shard]
    leases = read_leases(unique_name)
    assert all(
        x.owner_switches_since_checkpoint == 0 and x.checkpoint == after[x.lease_key][-1] for x in leases
    )


@pytest.mark.slow
async def test_a_failing_processor_stops_the_worker_without_checkpoint_and_the_batch_replays(
    aws_stack: object, unique_name: str
) -> None:
    create_stream(unique_name, 1)
    good = put(unique_name, 5, 1)
    (shard,) = good
    journal = Journal()
    config = settings(unique_name, "w1", **{"kinesis.idle_exit_s": 1.0})
    assert not (await start(config, journal)).failed
    poison = put(unique_name, 3, 1, data=lambda i: POISON if i == 1 else b"ok")[shard]
    failed = await start(config, journal)
    assert failed.failed
    (row,) = read_leases(unique_name)
    assert (row.checkpoint, row.lease_owner) == (good[shard][-1], None)  # not past the failed batch; released
    events = [e for w, s, (e, _) in journal.calls]
    assert events[-1] == "close" and "flush" not in events[events.index("initialize", 1) :]

    class Fixed(FakeShardProcessor):
        """The bug fixed: records everything, poison included."""

        async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> bool:
            self.journal.records.setdefault(self.shard_id, []).extend(r.sequence_number for r in records)
            return True

    replay = Journal()
    result = await asyncio.create_task(
        run_worker(
            config,
            lambda s: Fixed(replay, s, flush_pending=True),
            metrics=Metrics.create(CollectorRegistry()),
        )
    )
    assert not result.failed
    assert replay.seen(shard) == poison  # exactly the batch that failed, again
    assert read_leases(unique_name)[0].checkpoint == poison[-1]


@pytest.mark.slow
async def test_a_graceful_stop_flushes_checkpoints_and_releases_every_lease(
    aws_stack: object, unique_name: str
) -> None:
    create_stream(unique_name, 2)
    expected = put(unique_name, 60, 2)
    journal, stop = Journal(), asyncio.Event()
    task = start(settings(unique_name, "w1"), journal, stop, coalesce=True)  # durable only on flush
    await eventually(lambda: all(len(journal.seen(s)) == len(expected[s]) for s in expected))
    assert {x.checkpoint for x in read_leases(unique_name)} == {"TRIM_HORIZON"}  # nothing durable yet
    stop.set()
    result = await task
    assert (result.failed, result.checkpoints) == (False, 2)
    leases = read_leases(unique_name)
    assert {x.lease_key: (x.checkpoint, x.lease_owner) for x in leases} == {
        s: (seqs[-1], None) for s, seqs in expected.items()
    }
    closing = [(s, e) for w, s, (e, _) in journal.calls if e in ("flush", "close")]
    assert sorted(closing) == sorted([(s, "flush") for s in expected] + [(s, "close") for s in expected])


@pytest.mark.slow
async def test_checkpoint_age_is_zero_when_caught_up_and_keeps_growing_while_a_batch_hangs(
    aws_stack: object, unique_name: str
) -> None:
    create_stream(unique_name, 1)
    (shard,) = put(unique_name, 3, 1)
    registry, release, hung = CollectorRegistry(), asyncio.Event(), asyncio.Event()
    journal, stop, config = Journal(), asyncio.Event(), settings(unique_name, "w1")

    class Hanging(FakeShardProcessor):
        async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> bool:
            if records and self.journal.seen(
                self.shard_id
            ):  # the second batch hangs (a sink that never answers)
                hung.set()
                await release.wait()
            return await super().process(records, millis_behind_latest)

    def age() -> float | None:
        return registry.get_sample_value("wenu_checkpoint_age_seconds", {"app": config.app, "shard": shard})

    task = asyncio.create_task(
        run_worker(
            config,
            lambda s: Hanging(journal, s, flush_pending=True),
            metrics=Metrics.create(registry),
            stop=stop,
        )
    )
    await eventually(lambda: len(journal.seen(shard)) == 3)
    await asyncio.sleep(1.0)  # caught up, polling an empty shard
    assert age() == 0.0
    put(unique_name, 2, 1)
    await eventually(hung.is_set)
    await asyncio.sleep(2.5)  # no poll returns meanwhile: the lease renewer keeps the gauge moving
    assert age() is not None and age() > 1.5
    release.set()
    stop.set()
    await task
    assert age() is None  # a shard no longer held shows no stale value
