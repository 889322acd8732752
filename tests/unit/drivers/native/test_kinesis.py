"""The driver's GetRecords reader without a network: response decoding and error mapping."""

from __future__ import annotations

import base64
import json

import pytest

from wenu_stream.drivers.native.kinesis import (
    ExpiredIteratorError,
    KinesisError,
    RetryableError,
    decode_get_records,
    error_from_body,
)
from wenu_stream.model import KinesisRecord


def test_a_getrecords_body_decodes_straight_into_kinesis_records() -> None:
    data = base64.b64encode(b"\x00\x01raw").decode()
    body = json.dumps(
        {
            "Records": [
                {
                    "SequenceNumber": "4960",
                    "ApproximateArrivalTimestamp": 1.764e9,
                    "Data": data,
                    "PartitionKey": "EM-1",
                    "EncryptionType": "NONE",
                }
            ],
            "NextShardIterator": "it-2",
            "MillisBehindLatest": 0,
            "ChildShards": [
                {
                    "ShardId": "s-3",
                    "ParentShards": ["s-1"],
                    "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "9"},
                }
            ],
        }
    ).encode()
    out = decode_get_records(body)
    assert out.records == [
        KinesisRecord(
            sequence_number="4960",
            data=b"\x00\x01raw",
            partition_key="EM-1",
            approximate_arrival_timestamp=1.764e9,
        )
    ]
    assert (out.next_shard_iterator, out.millis_behind_latest) == ("it-2", 0)
    assert out.child_shards is not None and out.child_shards[0].parent_shards == ["s-1"]


def test_a_closed_shard_has_no_next_iterator_and_behind_is_optional() -> None:
    out = decode_get_records(b'{"Records":[],"NextShardIterator":null}')
    assert (out.records, out.next_shard_iterator, out.millis_behind_latest) == ([], None, None)


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (
            400,
            b'{"__type":"ExpiredIteratorException","message":"Iterator expired"}',
            ExpiredIteratorError,
            "ExpiredIteratorException",
        ),
        (
            400,
            b'{"__type":"com.amazonaws.kinesis.v20131202#ProvisionedThroughputExceededException","message":"x"}',
            RetryableError,
            "ProvisionedThroughputExceededException",
        ),
        (400, b'{"__type":"LimitExceededException"}', RetryableError, "LimitExceededException"),
        (503, b"<html>busy</html>", RetryableError, "HTTP503"),
        (500, b'{"__type":"InternalFailure"}', RetryableError, "InternalFailure"),
        (
            400,
            b'{"__type":"ResourceNotFoundException","message":"no stream"}',
            KinesisError,
            "ResourceNotFoundException",
        ),
        (403, b'{"Message":"denied"}', KinesisError, "HTTP403"),
    ],
)
def test_error_bodies_map_to_retry_classes(status: int, body: bytes, kind: type, code: str) -> None:
    error = error_from_body(status, body)
    assert type(error) is kind
    assert error.code == code


def test_the_error_type_header_is_used_when_the_body_has_none() -> None:
    error = error_from_body(400, b"{}", "ExpiredIteratorException:http://internal.amazon.com/")
    assert isinstance(error, ExpiredIteratorError)
