"""KPL aggregated records: records.kpl (the protobuf runtime) against the aws-kinesis-agg reference."""

from __future__ import annotations

import base64
import hashlib

import pytest
from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import deaggregate_records
from hypothesis import given
from hypothesis import strategies as st

from wenu_stream.records.encoding import aggregate
from wenu_stream.records.kpl import MAGIC, deaggregate, is_aggregate, outside

keys = st.text(min_size=1, max_size=40)
user_records = st.lists(st.tuples(keys, st.binary(max_size=300)), min_size=1, max_size=20)


def _reference_aggregate(records: list[tuple[str, bytes]]) -> bytes:
    aggregator = RecordAggregator()
    for key, data in records:
        assert aggregator.add_user_record(key, data) is None  # never full at these sizes
    return aggregator.clear_and_get().get_contents()[2]


def _reference_deaggregate(data: bytes, partition_key: str) -> list[tuple[str, bytes]]:
    record = {
        "kinesis": {
            "data": base64.b64encode(data).decode(),
            "partitionKey": partition_key,
            "kinesisSchemaVersion": "1.0",
            "sequenceNumber": "1",
            "approximateArrivalTimestamp": 0.0,
        }
    }
    return [
        (r["kinesis"]["partitionKey"], base64.b64decode(r["kinesis"]["data"]))
        for r in deaggregate_records([record])
    ]


@given(user_records)
def test_round_trip_through_our_aggregate(records: list[tuple[str, bytes]]) -> None:
    """What aggregate() packs, deaggregate() unpacks, in order."""
    assert deaggregate(aggregate(records), "outer") == records


@given(user_records)
def test_we_read_what_the_reference_aggregator_writes(records: list[tuple[str, bytes]]) -> None:
    """Records packed by aws-kinesis-agg come out of our deaggregate unchanged."""
    assert deaggregate(_reference_aggregate(records), "outer") == records


@given(user_records)
def test_the_reference_reads_what_we_write(records: list[tuple[str, bytes]]) -> None:
    """Records packed by our aggregate come out of aws-kinesis-agg unchanged."""
    assert _reference_deaggregate(aggregate(records), "outer") == records


def test_partition_key_table_is_deduplicated() -> None:
    """Each distinct partition key is written once (in order of first use)."""
    data = aggregate([("a", b"1"), ("b", b"2"), ("a", b"3")])
    assert data[len(MAGIC) :].count(b"\x0a\x01a") == 1
    assert deaggregate(data, "x") == [("a", b"1"), ("b", b"2"), ("a", b"3")]


def test_plain_record_is_one_user_record() -> None:
    """A record without the magic is returned as is, with its own partition key."""
    assert deaggregate(b"\x01\x01\x03abc", "pk") == [("pk", b"\x01\x01\x03abc")]


def test_bad_checksum_is_one_plain_record() -> None:
    """A wrong MD5 trailer makes the whole record one plain record (as the KCL does)."""
    data = aggregate([("a", b"1"), ("b", b"2")])
    broken = data[:-1] + bytes([data[-1] ^ 1])
    assert not is_aggregate(broken)
    assert deaggregate(broken, "pk") == [("pk", broken)]


def _with_digest(body: bytes) -> bytes:
    return MAGIC + body + hashlib.md5(body).digest()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="no-records"),
        pytest.param(b"\x1a\x04\x08\x00\x1a\x05", id="data-runs-past-record"),
        pytest.param(b"\x0a\x01a\x1a\x02\x08\x05", id="record-without-data"),
        pytest.param(b"\x0a\x01a\x1a\x05\x08\x01\x1a\x01x", id="index-out-of-range"),
        pytest.param(b"\x0a\x02\xff\xfe\x1a\x05\x08\x00\x1a\x01x", id="key-not-utf8"),
        pytest.param(b"\x0a\x01a\x1a\x05\x08\x00\x1a\x01x\x0b", id="group-wire-type"),
        pytest.param(b"\x0a\x01a\x1a\x05\x08\x00\x1a\x01x\xff\xff", id="truncated-varint"),
        pytest.param(b"\x08\x01", id="known-field-wrong-wire-type"),
    ],
)
def test_unparsable_aggregate_is_one_plain_record(body: bytes) -> None:
    """A checksummed but unparsable (or empty) aggregate is one plain record, never an exception."""
    data = _with_digest(body)
    assert deaggregate(data, "pk") == [("pk", data)]


def test_unknown_fields_and_multibyte_varints_are_read() -> None:
    """Explicit hash keys, tags and long varints, as a full KPL writes them, do not disturb reading."""
    payload = b"y" * 300  # a two-byte length varint
    record = b"\x08\x00\x10\x00\x1a\xac\x02" + payload + b"\x22\x03\x0a\x01k"  # + explicit hash index, a tag
    body = (
        b"\x0a\x01a" + b"\x12\x0212" + b"\x1a" + bytes([len(record) & 0x7F | 0x80, len(record) >> 7]) + record
    )
    assert deaggregate(_with_digest(body), "pk") == [("a", payload)]


@given(st.binary(max_size=200))
def test_any_checksummed_body_never_raises(body: bytes) -> None:
    """Random protobuf bodies with a valid checksum yield user records or the plain record."""
    data = _with_digest(body)
    result = deaggregate(data, "pk")
    assert result and all(isinstance(key, str) and isinstance(user, bytes) for key, user in result)


def _md5(key: str) -> int:
    return int.from_bytes(hashlib.md5(key.encode()).digest(), "big")


def test_outside_counts_the_user_records_a_hash_range_does_not_hold() -> None:
    keys = [f"k{i}" for i in range(20)]
    low = [k for k in keys if _md5(k) < 2**127]
    high = [k for k in keys if _md5(k) >= 2**127]
    mixed = aggregate([(k, b"x") for k in keys])
    assert outside(mixed, 0, 2**127 - 1) == len(high)
    assert outside(mixed, 2**127, 2**128 - 1) == len(low)
    assert outside(aggregate([(k, b"x") for k in low]), 0, 2**127 - 1) == 0
    assert outside(b"plain", 0, 0) == 0  # a plain record is routed by its own key: never outside


def test_outside_takes_an_explicit_hash_key_over_the_partition_key() -> None:
    aggregator = RecordAggregator()
    key = next(k for k in (f"k{i}" for i in range(100)) if _md5(k) < 2**127)
    assert aggregator.add_user_record(key, b"x", explicit_hash_key=str(2**127 + 5)) is None
    data = aggregator.clear_and_get().get_contents()[2]
    assert outside(data, 0, 2**127 - 1) == 1
    assert outside(data, 2**127, 2**128 - 1) == 0
