"""KPL aggregated records: ``F3 89 9A C2`` + protobuf ``AggregatedRecord`` + MD5 of the protobuf.

The protobuf messages (from the KPL's ``messages.proto``)::

    message AggregatedRecord {
      repeated string partition_key_table    = 1;
      repeated string explicit_hash_key_table = 2;
      repeated Record records                 = 3;
    }
    message Record {
      required uint64 partition_key_index     = 1;
      optional uint64 explicit_hash_key_index = 2;
      required bytes  data                    = 3;
      repeated Tag    tags                    = 4;
    }

As the Kinesis Client Library does, a record whose checksum does not match or
whose protobuf cannot be parsed is one plain record. So is an aggregate with no
user records, so that it reaches the dead-letter store instead of vanishing.
The wire parsing is hand-written: it is a few varints and length-delimited
fields, and pure Python over ``bytes`` is fast enough here.
"""

from __future__ import annotations

import hashlib
from typing import Final

MAGIC: Final = b"\xf3\x89\x9a\xc2"
DIGEST_SIZE: Final = 16

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class _Unparsable(Exception):
    """The protobuf is not a valid AggregatedRecord (internal; never escapes this module)."""


def deaggregate(data: bytes, partition_key: str) -> list[tuple[str, bytes]]:
    """Split a Kinesis record into its user records.

    Args:
        data: The Kinesis record's data.
        partition_key: The Kinesis record's partition key, used for a plain record.

    Returns:
        ``(partition key, user record)`` pairs, in order; ``[(partition_key, data)]`` for a plain record.
    """
    body = _checked_body(data)
    if body is None:
        return [(partition_key, data)]
    try:
        users = _parse_aggregate(body)
    # IndexError: a field read past the end of the body; UnicodeDecodeError: a partition key.
    except (_Unparsable, IndexError, UnicodeDecodeError):
        return [(partition_key, data)]
    return users or [(partition_key, data)]


def is_aggregate(data: bytes) -> bool:
    """Tell whether ``data`` has the KPL magic and a matching MD5 trailer."""
    return _checked_body(data) is not None


def _checked_body(data: bytes) -> bytes | None:
    if len(data) < len(MAGIC) + DIGEST_SIZE or not data.startswith(MAGIC):
        return None
    body = data[len(MAGIC) : -DIGEST_SIZE]
    return body if hashlib.md5(body, usedforsecurity=False).digest() == data[-DIGEST_SIZE:] else None


# One-byte tags of the length-delimited fields we read: (field << 3) | wire type 2.
_KEY_TAG, _RECORD_TAG = 1 << 3 | _LENGTH, 3 << 3 | _LENGTH


def _parse_aggregate(body: bytes) -> list[tuple[str, bytes]]:
    keys: list[str] = []
    records: list[tuple[int, bytes]] = []
    pos, end = 0, len(body)
    while pos < end:
        tag = body[pos]
        if tag == _RECORD_TAG or tag == _KEY_TAG:  # two compares: cheaper than a set probe
            start, pos = _span(body, pos + 1)
            if tag == _RECORD_TAG:
                records.append(_parse_record(body, start, pos))
            else:
                keys.append(body[start:pos].decode("utf-8"))
            continue
        field, wire, pos = _tag(body, pos)
        if field in (1, 2, 3) and wire != _LENGTH:
            raise _Unparsable(f"field {field} has wire type {wire}")
        pos = _skip(body, pos, wire)
    try:
        return [(keys[index], data) for index, data in records]
    except IndexError:
        raise _Unparsable("partition key index out of range") from None


def _parse_record(body: bytes, pos: int, end: int) -> tuple[int, bytes]:
    # The KPL writes exactly: 08 <index> 1A <length> <data>. Take that in one step when it fits.
    if end - pos > 3 and body[pos] == 0x08 and body[pos + 1] < 0x80 and body[pos + 2] == _RECORD_TAG:
        size, start = _varint(body, pos + 3)
        if start + size == end:
            return body[pos + 1], body[start:end]
    return _parse_record_fields(body, pos, end)


def _parse_record_fields(body: bytes, pos: int, end: int) -> tuple[int, bytes]:
    index: int | None = None
    data: bytes | None = None
    while pos < end:
        field, wire, pos = _tag(body, pos)
        if field == 1 and wire == _VARINT:
            index, pos = _varint(body, pos)
        elif field == 3 and wire == _LENGTH:
            start, pos = _span(body, pos)
            data = body[start:pos]
        elif field in (1, 3):
            raise _Unparsable(f"record field {field} has wire type {wire}")
        else:
            pos = _skip(body, pos, wire)
        if pos > end:
            raise _Unparsable("record field runs past the record")
    if index is None or data is None:
        raise _Unparsable("record lacks its partition key index or data")
    return index, data


def _tag(body: bytes, pos: int) -> tuple[int, int, int]:
    key, pos = _varint(body, pos)
    if key >> 3 == 0:
        raise _Unparsable("field number 0")
    return key >> 3, key & 7, pos


def _varint(body: bytes, pos: int) -> tuple[int, int]:
    byte = body[pos]
    if byte < 0x80:  # the common one-byte case
        return byte, pos + 1
    value, shift = 0, 0
    while byte & 0x80:
        value |= (byte & 0x7F) << shift
        shift += 7
        pos += 1
        if shift > 63 or pos >= len(body):
            raise _Unparsable("varint too long or truncated")
        byte = body[pos]
    return value | (byte << shift), pos + 1


def _span(body: bytes, pos: int) -> tuple[int, int]:
    size = body[pos]
    if size < 0x80:  # the common one-byte length
        start = pos + 1
    else:
        size, start = _varint(body, pos)
    if start + size > len(body):
        raise _Unparsable("length-delimited field runs past the end")
    return start, start + size


def _skip(body: bytes, pos: int, wire: int) -> int:
    if wire == _VARINT:
        return _varint(body, pos)[1]
    if wire == _LENGTH:
        return _span(body, pos)[1]
    width = {_FIXED64: 8, _FIXED32: 4}.get(wire)
    if width is None or pos + width > len(body):
        raise _Unparsable(f"wire type {wire} unsupported or truncated")
    return pos + width
