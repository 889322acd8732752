"""The shared AWS plumbing (``aws.common``) against the moto server: pages, conditional writes, batched reads."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from aiobotocore.session import get_session

from wenu_stream.aws.common import (
    RETRY_ATTEMPTS,
    ConditionFailed,
    batch_get,
    client_config,
    paginate,
    paginate_sync,
    write_if,
)

pytestmark = pytest.mark.integration


def make_table(name: str) -> None:
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def put(name: str, count: int, size: int = 0) -> None:
    ddb = boto3.client("dynamodb")
    for i in range(count):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"k{i:03d}"}, "blob": {"B": b"x" * size}})


async def test_paginate_follows_every_page(aws_stack: object, unique_name: str) -> None:
    make_table(unique_name)
    put(unique_name, 10)
    pages: list[int] = []
    async with get_session().create_client("dynamodb", config=client_config()) as ddb:

        async def scan(**args: Any) -> Any:
            page = await ddb.scan(**args)
            pages.append(len(page["Items"]))
            return page

        found = [i["pk"]["S"] async for i in paginate(scan, TableName=unique_name, Limit=3)]
    assert sorted(found) == [f"k{i:03d}" for i in range(10)]
    assert len(pages) >= 4  # 3 + 3 + 3 + 1: the key of each page was followed
    synced = paginate_sync(boto3.client("dynamodb").scan, TableName=unique_name, Limit=4)
    assert sorted(i["pk"]["S"] for i in synced) == sorted(found)


@pytest.mark.slow
async def test_a_false_condition_is_a_value_holding_what_the_condition_saw(
    aws_stack: object, unique_name: str
) -> None:
    make_table(unique_name)
    async with get_session().create_client("dynamodb") as ddb:
        args: dict[str, Any] = {
            "TableName": unique_name,
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        first = await write_if(ddb.put_item, Item={"pk": {"S": "a"}, "v": {"N": "1"}}, **args)
        second = await write_if(ddb.put_item, Item={"pk": {"S": "a"}, "v": {"N": "2"}}, **args)
        with pytest.raises(Exception, match="ResourceNotFoundException"):
            await write_if(ddb.put_item, **(args | {"TableName": unique_name + "-missing"}), Item={})
    assert not isinstance(first, ConditionFailed)
    assert second == ConditionFailed({"pk": {"S": "a"}, "v": {"N": "1"}})


@pytest.mark.slow
async def test_batch_get_reads_many_keys_once_each_and_skips_missing_ones(
    aws_stack: object, unique_name: str
) -> None:
    make_table(unique_name)
    put(unique_name, 230)
    wanted = [{"pk": {"S": f"k{i:03d}"}} for i in range(260)]  # 30 of them do not exist
    async with get_session().create_client("dynamodb") as ddb:
        items = await batch_get(ddb.batch_get_item, unique_name, wanted + wanted[:150])  # repeats too
    assert sorted(i["pk"]["S"] for i in items) == [f"k{i:03d}" for i in range(230)]


@pytest.mark.slow
async def test_batch_get_asks_again_for_the_keys_a_too_large_answer_left_unprocessed(
    aws_stack: object, unique_name: str
) -> None:
    """DynamoDB (and moto) answer at most 16 MB per BatchGetItem; the rest comes back as UnprocessedKeys."""
    make_table(unique_name)
    put(unique_name, 50, size=380_000)  # 19 MB in all
    requests: list[int] = []
    async with get_session().create_client("dynamodb") as ddb:

        async def counted(**args: Any) -> Any:
            requests.append(len(next(iter(args["RequestItems"].values()))["Keys"]))
            return await ddb.batch_get_item(**args)

        items = await batch_get(counted, unique_name, [{"pk": {"S": f"k{i:03d}"}} for i in range(50)])
    assert sorted(i["pk"]["S"] for i in items) == [f"k{i:03d}" for i in range(50)]
    assert requests[0] == 50 and len(requests) >= 2 and requests[1] < 50


async def test_clients_retry_in_standard_mode_with_deadlines(aws_stack: object) -> None:
    async with get_session().create_client("dynamodb", config=client_config()) as ddb:
        config = ddb.meta.config
        assert config.retries == {"mode": "standard", "total_max_attempts": RETRY_ATTEMPTS}
        assert config.connect_timeout <= 5 and config.read_timeout <= 30
