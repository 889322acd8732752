"""Every AWS call has an overall deadline: a black hole (the fault proxy's hold) in front of the real emulator ends a
call in its deadline, logged with its service and operation, and readiness names it while it hangs.

S3 uploads are held with ``bytes`` (what our sinks pass) and with a file object: botocore turns a PutObject body
into a file object either way (``convert_body_to_file_like_object``), so both go with ``Expect: 100-continue``
(``add_expect_header``), and aiohttp waits for the interim answer the black hole never sends, sending no body.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import structlog
from aiobotocore.session import get_session

from tests.fixtures.aws import create_stream
from tests.support.fault_proxy import FaultProxy, fault_proxy
from wenu_stream.aws.common import client_config
from wenu_stream.aws.deadlines import CallTimeout, Deadlines, with_deadlines
from wenu_stream.aws.fast_dynamodb import FastDynamoDB
from wenu_stream.drivers.native.kinesis import FastGetRecords, RetryableError
from wenu_stream.health import Health

pytestmark = pytest.mark.integration

DEADLINE_S = 1.0


@pytest.fixture
def held(aws_stack: object, request: pytest.FixtureRequest) -> Iterator[FaultProxy]:
    """A fault proxy in front of the service named by the test's parameter, holding every request."""
    url = urlsplit(os.environ[request.param])
    with fault_proxy(url.hostname or "127.0.0.1", url.port or 80) as proxy:
        proxy.hold()
        yield proxy


@pytest.fixture
def deadlines() -> tuple[Deadlines, Health]:
    health = Health(stall_s=0.3)
    return Deadlines(DEADLINE_S, health.calls, stall_s=0.3), health


async def held_call(deadlines: Deadlines, health: Health, call: Any) -> tuple[float, list[str], list[Any]]:
    """Run ``call`` into the black hole: (seconds until it gave up, readiness reasons meanwhile, log events)."""
    started = time.monotonic()
    with structlog.testing.capture_logs() as logs:
        task = asyncio.ensure_future(call())
        await asyncio.sleep(0.6)  # past stall_s, before the deadline
        ready, reasons = health.readiness()
        assert not ready
        with pytest.raises((CallTimeout, RetryableError)):
            await task
    assert health.readiness() == (True, [])  # nothing in flight any more
    return time.monotonic() - started, reasons, logs


@pytest.mark.parametrize("held", ["AWS_ENDPOINT_URL"], indirect=True)
@pytest.mark.parametrize("body", ["bytes", "file"])
async def test_a_held_s3_upload_ends_at_its_deadline_with_or_without_expect_100_continue(
    held: FaultProxy, deadlines: tuple[Deadlines, Health], unique_name: str, body: str
) -> None:
    boto3.client("s3").create_bucket(Bucket=unique_name)
    sent: list[dict[str, Any]] = []
    async with get_session().create_client(
        "s3", endpoint_url=held.url, config=client_config(read_s=30)
    ) as raw:
        raw.meta.events.register(
            "before-send.s3.PutObject", lambda request, **_: sent.append(dict(request.headers))
        )
        s3 = with_deadlines(raw, "s3", deadlines[0])
        data: Any = b"x" * 2048 if body == "bytes" else io.BytesIO(b"x" * 2048)
        took, reasons, logs = await held_call(
            *deadlines, lambda: s3.put_object(Bucket=unique_name, Key="k", Body=data)
        )
    assert sent[0].get("Expect") == b"100-continue"  # botocore's add_expect_header, for bytes too
    assert held.requests == 0  # the body never left (no 100 Continue): the black hole saw the headers only
    assert DEADLINE_S <= took < DEADLINE_S + 1.5  # not read_timeout (30 s) x 5 attempts
    assert reasons and reasons[0].startswith("call s3 PutObject in flight for")
    events = [(e["event"], e.get("service"), e.get("operation")) for e in logs]
    assert ("call_stalled", "s3", "PutObject") in events and ("call_timed_out", "s3", "PutObject") in events


@pytest.mark.parametrize("held", ["AWS_ENDPOINT_URL_DYNAMODB"], indirect=True)
async def test_a_held_dynamodb_write_of_the_signed_transport_ends_at_its_deadline(
    held: FaultProxy, deadlines: tuple[Deadlines, Health], unique_name: str
) -> None:
    async with get_session().create_client("dynamodb", endpoint_url=held.url, config=client_config()) as sdk:
        fast = await FastDynamoDB.open(get_session(), sdk, deadlines=deadlines[0])
        try:
            item = {"id": {"S": "a"}}
            took, reasons, logs = await held_call(
                *deadlines, lambda: fast.put_item(TableName=unique_name, Item=item)
            )
        finally:
            await fast.close()
    assert DEADLINE_S <= took < DEADLINE_S + 1.5
    assert reasons[0].startswith("call dynamodb PutItem in flight for")
    assert ("call_timed_out", "dynamodb", "PutItem") in [
        (e["event"], e.get("service"), e.get("operation")) for e in logs
    ]


@pytest.mark.parametrize("held", ["AWS_ENDPOINT_URL_KINESIS"], indirect=True)
async def test_a_held_get_records_ends_at_its_deadline_as_a_retryable_error(
    held: FaultProxy, deadlines: tuple[Deadlines, Health], unique_name: str
) -> None:
    (shard,) = create_stream(unique_name, 1)
    iterator = boto3.client("kinesis").get_shard_iterator(
        StreamName=unique_name, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    async with get_session().create_client("kinesis", endpoint_url=held.url, config=client_config()) as kin:
        reader = await FastGetRecords.open(get_session(), kin, deadlines=deadlines[0])
        try:
            took, reasons, _ = await held_call(*deadlines, lambda: reader.get_records(iterator))
        finally:
            await reader.close()
    assert DEADLINE_S <= took < DEADLINE_S + 1.5
    assert reasons[0].startswith("call kinesis GetRecords in flight for")


@pytest.mark.parametrize("held", ["AWS_ENDPOINT_URL"], indirect=True)
async def test_each_page_of_a_paginator_is_a_call_under_the_deadline(
    held: FaultProxy, deadlines: tuple[Deadlines, Health], unique_name: str
) -> None:
    s3_direct = boto3.client("s3")
    s3_direct.create_bucket(Bucket=unique_name)
    for key in ("a", "b", "c"):
        s3_direct.put_object(Bucket=unique_name, Key=key, Body=b"x")
    async with get_session().create_client("s3", config=client_config()) as direct:
        pages = with_deadlines(direct, "s3", deadlines[0]).get_paginator("list_objects_v2")
        keys = [
            o["Key"] async for page in pages.paginate(Bucket=unique_name, MaxKeys=2) for o in page["Contents"]
        ]
    assert keys == ["a", "b", "c"]  # two pages, then the end, through the wrapper
    async with get_session().create_client("s3", endpoint_url=held.url, config=client_config()) as raw:
        paginator = with_deadlines(raw, "s3", deadlines[0]).get_paginator("list_objects_v2")

        async def first_page() -> Any:
            async for page in paginator.paginate(Bucket=unique_name):
                return page
            return None

        took, reasons, _ = await held_call(*deadlines, first_page)
    assert DEADLINE_S <= took < DEADLINE_S + 1.5
    assert reasons[0].startswith("call s3 ListObjectsV2 in flight for")
