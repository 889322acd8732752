"""The hand-written SigV4 of the signed transport agrees with botocore's ``SigV4Auth`` byte for byte."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from wenu_stream.aws.signed import SigV4, canonical_host

NOW = dt.datetime(2026, 11, 28, 3, 20, 0, tzinfo=dt.UTC)
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("token", [None, "session-token/+="])
@pytest.mark.parametrize(
    ("endpoint", "service", "region", "target", "content_type", "body"),
    [
        ("http://127.0.0.1:45699", "dynamodb", "us-east-1", "DynamoDB_20120810.PutItem",
         "application/x-amz-json-1.0", b'{"TableName":"t","Item":{"pk":{"S":"a  b"},"blob":{"B":"AQI="}}}'),
        ("https://dynamodb.eu-west-1.amazonaws.com", "dynamodb", "eu-west-1", "DynamoDB_20120810.UpdateItem",
         "application/x-amz-json-1.0", b'{"TableName":"wenu-alarm-state","Key":{"pk":{"S":"r#s"}}}'),
        ("https://kinesis.us-east-1.amazonaws.com:443", "kinesis", "us-east-1", "Kinesis_20131202.GetRecords",
         "application/x-amz-json-1.1", b'{"ShardIterator":"AAAA/+==","Limit":10000}'),
    ],
)  # fmt: skip
def test_signature_matches_botocore(
    endpoint: str, service: str, region: str, target: str, content_type: str, body: bytes, token: str | None
) -> None:
    headers = {"Content-Type": content_type, "X-Amz-Target": target}
    ours = SigV4(service, region).headers(
        canonical_host(endpoint),
        headers,
        body,
        access_key="AKIDEXAMPLE",
        secret_key=SECRET,
        token=token,
        now=NOW,
    )
    request = AWSRequest(method="POST", url=endpoint.rstrip("/") + "/", data=body, headers=dict(headers))
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        SigV4Auth(Credentials("AKIDEXAMPLE", SECRET, token), service, region).add_auth(request)
    theirs = dict(request.headers.items())
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")


def test_the_host_signed_drops_only_a_default_port() -> None:
    assert canonical_host("http://127.0.0.1:4566/") == "127.0.0.1:4566"
    assert (
        canonical_host("https://dynamodb.us-east-1.amazonaws.com:443") == "dynamodb.us-east-1.amazonaws.com"
    )
    assert canonical_host("http://localhost:80") == "localhost"


def test_signing_key_is_cached_per_day_and_secret() -> None:
    signer = SigV4("dynamodb", "us-east-1")
    key = signer._signing_key("20261128", SECRET)
    assert signer._signing_key("20261128", SECRET) is key
    assert signer._signing_key("20261129", SECRET) != key
    assert signer._signing_key("20261129", "other") != signer._signing_key("20261129", SECRET)
