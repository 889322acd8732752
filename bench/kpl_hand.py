"""The hand-written KPL parser ``records/kpl.py`` held until the protobuf runtime replaced it.

Kept only so that ``bench/decode.py`` can show, side by side, that the decision still holds:
the same results (the benchmark asserts it), per user record, against ``records.kpl``.
The wire parsing is a few varints and length-delimited fields over ``bytes``.
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
    digest = _MD5.copy()  # copying a ready hasher skips OpenSSL's per-call algorithm fetch
    digest.update(body)
    return body if digest.digest() == data[-DIGEST_SIZE:] else None


_MD5: Final = hashlib.md5(usedforsecurity=False)

# One-byte tags of the length-delimited fields we read: (field << 3) | wire type 2.
_KEY_TAG, _RECORD_TAG = 1 << 3 | _LENGTH, 3 << 3 | _LENGTH
_INDEX_TAG: Final = 1 << 3 | _VARINT


def _parse_aggregate(body: bytes) -> list[tuple[str, bytes]]:
    # One loop over the top-level fields. Per user record it reads the shape the KPL writes,
    # ``1A <len> 08 <index> 1A <len> <data>``, inline (one- and two-byte lengths, one-byte index);
    # anything else (multi-byte tags, other fields, other layouts) goes to the general helpers.
    keys: list[str] = []
    records: list[tuple[int, bytes]] = []
    pos, end = 0, len(body)
    while pos < end:
        tag = body[pos]
        if tag in (_RECORD_TAG, _KEY_TAG):  # two compares: cheaper than a set probe
            pos += 1
        else:
            known, pos = _other_field(body, pos)
            if known is None:
                continue
            tag = known
        size = body[pos]
        if size < 0x80:
            start = pos + 1
        elif body[pos + 1] < 0x80:  # a two-byte length: a user record of 128 bytes to 16 KiB
            size, start = (size & 0x7F) | body[pos + 1] << 7, pos + 2
        else:
            size, start = _varint(body, pos)
        pos = start + size
        if pos > end:
            raise _Unparsable("length-delimited field runs past the end")
        if tag == _KEY_TAG:
            keys.append(body[start:pos].decode("utf-8"))
            continue
        # size > 4: the bytes read below, start .. start + 4, are inside the record.
        if (
            size > 4
            and body[start] == _INDEX_TAG
            and body[start + 1] < 0x80
            and body[start + 2] == _RECORD_TAG
        ):
            length = body[start + 3]
            if length < 0x80:
                first = start + 4
            elif body[start + 4] < 0x80:  # a two-byte length
                length, first = (length & 0x7F) | body[start + 4] << 7, start + 5
            else:  # a longer length: past the end, so the test below fails and the general path reads it
                first = end + 1
            if first + length == pos:
                records.append((body[start + 1], body[first:pos]))
                continue
        records.append(_parse_record_fields(body, start, pos))
    try:
        return [(keys[index], data) for index, data in records]
    except IndexError:
        raise _Unparsable("partition key index out of range") from None


def _other_field(body: bytes, pos: int) -> tuple[int | None, int]:
    """Read a top-level tag that is not a one-byte key or record tag.

    Returns the one-byte tag of a key or record written with a longer (padded) tag and the position
    of its length, or ``None`` and the position after a field we skip (explicit hash keys, unknown).
    """
    field, wire, pos = _tag(body, pos)
    if field in (1, 2, 3) and wire != _LENGTH:
        raise _Unparsable(f"field {field} has wire type {wire}")
    if field == 1:
        return _KEY_TAG, pos
    if field == 3:
        return _RECORD_TAG, pos
    return None, _skip(body, pos, wire)


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
