"""The hand-signed DynamoDB client answers like the SDK client: binary attributes as bytes, errors as ClientError."""

from __future__ import annotations

import base64

import msgspec

from wenu_stream.aws.common import ConditionFailed, error_code, is_conditional_failure
from wenu_stream.aws.fast_dynamodb import _response, client_error


def test_binary_attributes_come_back_as_bytes_wherever_they_are() -> None:
    b64 = base64.b64encode(b"\x00\x01zz").decode()
    out = _response({
        "Item": {"pk": {"S": "a"}, "blob": {"B": b64}, "m": {"M": {"x": {"B": b64}, "l": {"L": [{"B": b64}]}}}},
        "Responses": {"t": [{"pk": {"S": "b"}, "bs": {"BS": [b64]}}]},
        "UnprocessedKeys": {"t": {"Keys": [{"pk": {"B": b64}}], "ConsistentRead": True}},
    })  # fmt: skip
    assert out["Item"]["blob"] == {"B": b"\x00\x01zz"}
    assert out["Item"]["m"]["M"]["x"] == {"B": b"\x00\x01zz"}
    assert out["Item"]["m"]["M"]["l"]["L"] == [{"B": b"\x00\x01zz"}]
    assert out["Responses"]["t"][0]["bs"] == {"BS": [b"\x00\x01zz"]}
    assert out["UnprocessedKeys"]["t"]["Keys"] == [{"pk": {"B": b"\x00\x01zz"}}]


def test_a_failed_condition_is_the_sdk_error_with_the_old_item() -> None:
    body = msgspec.json.encode({
        "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
        "message": "The conditional request failed",
        "Item": {"fence": {"S": "shard/1"}, "blob": {"B": base64.b64encode(b"x").decode()}},
    })  # fmt: skip
    exc = client_error(400, body, None, "PutItem")
    assert error_code(exc) == "ConditionalCheckFailedException" and is_conditional_failure(exc)
    assert exc.response["Item"] == {"fence": {"S": "shard/1"}, "blob": {"B": b"x"}}
    assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert ConditionFailed(exc.response["Item"]).item["fence"]["S"] == "shard/1"


def test_an_error_without_a_body_takes_its_code_from_the_header_or_the_status() -> None:
    assert (
        error_code(client_error(400, b"", "ThrottlingException:http://internal", "PutItem"))
        == "ThrottlingException"
    )
    assert error_code(client_error(503, b"<html>busy</html>", None, "PutItem")) == "HTTP503"
