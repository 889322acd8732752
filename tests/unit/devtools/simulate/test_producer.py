"""The producer batches within PutRecords limits, paces by simulated time, and retries only failed entries.

Partial PutRecords failures and throttling are faults no local emulator produces,
so those tests go through botocore's Stubber; the integration test puts for real.
"""

from __future__ import annotations

import random

import boto3
import pytest
from botocore.stub import Stubber

from wenu_stream.devtools.simulate.generator import ProducedRecord
from wenu_stream.devtools.simulate.producer import KinesisProducer, Pacer, ProducerError, put_all
from wenu_stream.testing import SettableClock


def record(emit_ms: int, data: bytes = b"x", key: str = "EM-000001") -> ProducedRecord:
    return ProducedRecord(partition_key=key, data=data, emit_ms=emit_ms, users=())


@pytest.fixture
def kinesis() -> object:
    return boto3.client(
        "kinesis",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        endpoint_url="http://127.0.0.1:9",
    )


def entries(n: int) -> list[dict]:
    return [{"Data": bytes([i]), "PartitionKey": f"k{i}"} for i in range(n)]


def test_only_failed_entries_are_retried(kinesis: object) -> None:
    clock = SettableClock(100_000)
    producer = KinesisProducer("s", kinesis, sleep=clock.sleep, rng=random.Random(1))
    batch = entries(3)
    with Stubber(kinesis) as stub:
        stub.add_response(
            "put_records",
            {
                "FailedRecordCount": 1,
                "Records": [
                    {"SequenceNumber": "1", "ShardId": "shardId-0"},
                    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"},
                    {"SequenceNumber": "2", "ShardId": "shardId-0"},
                ],
            },
            {"StreamName": "s", "Records": batch},
        )
        stub.add_client_error(
            "put_records",
            "ProvisionedThroughputExceededException",
            expected_params={"StreamName": "s", "Records": [batch[1]]},
        )
        stub.add_response(
            "put_records",
            {"Records": [{"SequenceNumber": "3", "ShardId": "shardId-0"}]},
            {"StreamName": "s", "Records": [batch[1]]},
        )
        producer.put(batch)
        stub.assert_no_pending_responses()
    assert (producer.stats.records_put, producer.stats.calls, producer.stats.retried) == (3, 3, 2)
    assert len(clock.sleeps) == 2 and all(0 <= s <= 5 for s in clock.sleeps)


def test_gives_up_after_the_last_attempt(kinesis: object) -> None:
    producer = KinesisProducer("s", kinesis, max_attempts=3, sleep=lambda s: None)
    with Stubber(kinesis) as stub:
        for _ in range(3):
            stub.add_response(
                "put_records",
                {
                    "FailedRecordCount": 1,
                    "Records": [{"ErrorCode": "InternalFailure", "ErrorMessage": "boom"}],
                },
            )
        with pytest.raises(ProducerError, match="1 records not put"):
            producer.put(entries(1))
    assert producer.stats.records_put == 0


def test_other_errors_are_not_retried(kinesis: object) -> None:
    producer = KinesisProducer("s", kinesis, sleep=lambda s: None)
    with Stubber(kinesis) as stub:
        stub.add_client_error("put_records", "ResourceNotFoundException")
        with pytest.raises(Exception, match="ResourceNotFoundException"):
            producer.put(entries(1))
    assert producer.stats.calls == 1


def test_batches_hold_at_most_500_records_and_5_mib() -> None:
    sent: list[list[dict]] = []
    put_all([record(0) for _ in range(1201)], sent.append, Pacer("none"))
    assert [len(b) for b in sent] == [500, 500, 201]
    sent.clear()
    put_all([record(0, bytes(1_000_000)) for _ in range(7)], sent.append, Pacer("none"))
    assert [len(b) for b in sent] == [5, 2]


def test_records_leave_when_due_never_early() -> None:
    clock = SettableClock(100_000)
    pacer = Pacer("relative", start_ms=0, rate=10, now=clock.seconds)
    sent: list[tuple[float, list[str]]] = []
    emits = [0, 1000, 1500, 5000, 5100]  # at 10x: due 0, 0.1, 0.15, 0.5, 0.51 s after the start
    put_all(
        [record(ms, key=str(ms)) for ms in emits],
        lambda batch: sent.append((clock.now, [e["PartitionKey"] for e in batch])),
        pacer,
        sleep=clock.sleep,
    )
    assert [keys for _, keys in sent] == [["0", "1000", "1500"], ["5000", "5100"]]
    assert [round(at - 100.0, 3) for at, _ in sent] == [0.15, 0.51]


def test_absolute_pacing_sends_the_past_at_once() -> None:
    clock = SettableClock(100_000)
    pacer = Pacer("absolute", now=clock.seconds, wall=lambda: 1_000_000.0)
    sent: list[float] = []
    put_all(
        [record(900_000_000), record(999_999_000), record(1_000_002_000)],
        lambda b: sent.append(clock.now),
        pacer,
        sleep=clock.sleep,
    )
    assert [round(t - 100.0, 3) for t in sent] == [0.0, 2.0]
