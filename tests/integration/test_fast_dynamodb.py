"""The hand-signed DynamoDB client against the emulator gives what the SDK client gives, errors included."""

from __future__ import annotations

import pytest
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from wenu_stream.aws.common import ConditionFailed, client_config, error_code, write_if
from wenu_stream.aws.fast_dynamodb import FastDynamoDB
from wenu_stream.aws.provision import ensure_stats_table
from wenu_stream.config import load_config
from wenu_stream.devtools.emulator import Stack

pytestmark = pytest.mark.integration


async def test_hot_calls_answer_like_the_sdk(aws_stack: Stack, unique_name: str) -> None:
    ensure_stats_table(load_config({}, {"stats.table": unique_name}), {})
    session = get_session()
    async with session.create_client("dynamodb", config=client_config()) as sdk:
        fast = await FastDynamoDB.open(session, sdk)
        try:
            item = {"pk": {"S": "s#state"}, "sk": {"N": "0"}, "blob": {"B": b"\x00\xffz"}, "n": {"N": "1.50"},
                    "m": {"M": {"l": {"L": [{"S": "x"}, {"BOOL": True}, {"NULL": True}]}}}}  # fmt: skip
            await fast.put_item(
                TableName=unique_name, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
            key = {"pk": item["pk"], "sk": item["sk"]}
            ours = await fast.get_item(TableName=unique_name, Key=key, ConsistentRead=True)
            theirs = await sdk.get_item(TableName=unique_name, Key=key, ConsistentRead=True)
            assert ours["Item"] == theirs["Item"] and ours["Item"]["blob"] == {"B": b"\x00\xffz"}

            failed = await write_if(fast.put_item, TableName=unique_name, Item=item,
                                    ConditionExpression="attribute_not_exists(pk)")  # fmt: skip
            assert isinstance(failed, ConditionFailed)

            out = await fast.update_item(TableName=unique_name, Key=key, UpdateExpression="SET n = :v",
                                         ExpressionAttributeValues={":v": {"N": "2"}}, ReturnValues="ALL_NEW")  # fmt: skip
            assert out["Attributes"]["n"] == {"N": "2"} and out["Attributes"]["blob"] == {"B": b"\x00\xffz"}

            got = await fast.batch_get_item(
                RequestItems={unique_name: {"Keys": [key], "ConsistentRead": True}}
            )
            assert got["Responses"][unique_name][0]["blob"] == {"B": b"\x00\xffz"}

            with pytest.raises(ClientError) as caught:
                await fast.put_item(TableName=unique_name, Item={"pk": {"S": "no range key"}})
            assert error_code(caught.value) == "ValidationException"
            with pytest.raises(ClientError) as missing:
                await fast.get_item(TableName=f"{unique_name}-none", Key=key)
            assert error_code(missing.value) == "ResourceNotFoundException"

            pages = await fast.query(TableName=unique_name, KeyConditionExpression="pk = :p",
                                     ExpressionAttributeValues={":p": item["pk"]})  # fmt: skip
            assert pages["Count"] == 1  # not a hot call: the SDK's own
        finally:
            await fast.close()
