"""The hand-written S3 SigV4 signer of the dead-letter fast path agrees with botocore's byte for byte."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from wenu_stream.aws.s3_put import SigV4S3

NOW = dt.datetime(2026, 11, 28, 3, 20, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("token", [None, "session-token/+="])
@pytest.mark.parametrize(
    ("host", "path", "region"),
    [
        (
            "127.0.0.1:4566",
            "/wenu-dlq/dead-letter/processing/readings/auth_failed/shardId-1/0007-00002.json",
            "us-east-1",
        ),
        ("wenu-dlq.s3.eu-west-1.amazonaws.com", "/dead-letter/a%3Ab/x~y.json", "eu-west-1"),
    ],
)
def test_signature_matches_botocore(host: str, path: str, region: str, token: str | None) -> None:
    body = b'{"reason":"auth_failed","data_b64":"AQI="}'
    ours = SigV4S3(region).headers(
        "PUT",
        host,
        path,
        {"Content-Type": "application/json"},
        body,
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        token=token,
        now=NOW,
    )
    scheme = "http" if host[0].isdigit() else "https"
    request = AWSRequest(
        method="PUT", url=f"{scheme}://{host}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    request.context["payload_signing_enabled"] = True
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        S3SigV4Auth(
            Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token), "s3", region
        ).add_auth(request)
    theirs = dict(request.headers.items())
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["X-Amz-Content-SHA256"] == theirs["X-Amz-Content-SHA256"]
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")


def test_signing_key_is_cached_per_day_and_secret() -> None:
    signer = SigV4S3("us-east-1")
    first = signer._signing_key("20261128", "s1")
    assert signer._signing_key("20261128", "s1") is first
    assert signer._signing_key("20261129", "s1") != first
    assert signer._signing_key("20261129", "s2") != signer._signing_key("20261129", "s1")
