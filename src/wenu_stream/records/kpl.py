"""KPL aggregated records: ``F3 89 9A C2`` + protobuf ``AggregatedRecord`` + MD5 of the protobuf.

The protobuf messages (the KPL's aggregation format, ``messages.proto``)::

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
    message Tag { required string key = 1; optional string value = 2; }

They are parsed by the protobuf runtime (its upb backend), from a descriptor
built here at import; ``bench/decode.py`` measured it against the hand-written
parser this module used to hold and kept the faster (see its ``kpl`` lines).

As the Kinesis Client Library does, a record whose checksum does not match or
whose protobuf cannot be parsed (malformed, a required field missing, a
partition key that is not UTF-8 or whose index is out of range) is one plain
record. So is an aggregate with no user records, so that it reaches the
dead-letter store instead of vanishing.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

MAGIC: Final = b"\xf3\x89\x9a\xc2"
DIGEST_SIZE: Final = 16


def _aggregated_record_class() -> Any:
    """The ``AggregatedRecord`` message class, from a descriptor of the three messages above."""
    field = descriptor_pb2.FieldDescriptorProto
    required, optional, repeated = field.LABEL_REQUIRED, field.LABEL_OPTIONAL, field.LABEL_REPEATED
    proto = descriptor_pb2.FileDescriptorProto(name="wenu_kpl.proto", package="wenu.kpl", syntax="proto2")
    messages = {
        "Tag": [("key", 1, field.TYPE_STRING, required, ""), ("value", 2, field.TYPE_STRING, optional, "")],
        "Record": [
            ("partition_key_index", 1, field.TYPE_UINT64, required, ""),
            ("explicit_hash_key_index", 2, field.TYPE_UINT64, optional, ""),
            ("data", 3, field.TYPE_BYTES, required, ""),
            ("tags", 4, field.TYPE_MESSAGE, repeated, ".wenu.kpl.Tag"),
        ],
        "AggregatedRecord": [
            ("partition_key_table", 1, field.TYPE_STRING, repeated, ""),
            ("explicit_hash_key_table", 2, field.TYPE_STRING, repeated, ""),
            ("records", 3, field.TYPE_MESSAGE, repeated, ".wenu.kpl.Record"),
        ],
    }
    for name, fields in messages.items():
        message = proto.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            added = message.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                added.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("wenu.kpl.AggregatedRecord"))


_AggregatedRecord: Final = _aggregated_record_class()


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
    aggregated = _AggregatedRecord()
    try:
        aggregated.ParseFromString(body)
    except DecodeError:
        return [(partition_key, data)]
    if not aggregated.IsInitialized():  # a required field is missing
        return [(partition_key, data)]
    keys = list(aggregated.partition_key_table)  # a list: each key becomes a str once, not once per record
    for key in keys:
        if type(key) is not str:  # upb hands a proto2 string that is not UTF-8 over as bytes
            return [(partition_key, data)]
    try:
        users = [(keys[r.partition_key_index], r.data) for r in aggregated.records]
    except IndexError:
        return [(partition_key, data)]
    return users or [(partition_key, data)]


def outside(data: bytes, start: int, end: int) -> int:
    """How many user records of an aggregate lie outside the hash-key range ``[start, end]`` (0 when all are
    in it, or ``data`` is no aggregate).

    A user record's hash key is its explicit hash key if it has one, else the MD5 of its partition key,
    as Kinesis routes a plain record. A KPL whose shard map is stale (a reshard) packs records of several
    shards into one aggregate; it puts every such record again when the aggregate lands on another shard
    than it predicted, and the Kinesis Client Library drops an aggregate holding a record outside its
    shard (the whole aggregate: ``ingest.batch``).
    """
    body = _checked_body(data)
    if body is None:
        return 0
    aggregated = _AggregatedRecord()
    try:
        aggregated.ParseFromString(body)
        keys, explicit = list(aggregated.partition_key_table), list(aggregated.explicit_hash_key_table)
        hashes = [
            int(explicit[r.explicit_hash_key_index])
            if r.HasField("explicit_hash_key_index")
            else _key_hash(keys[r.partition_key_index])
            for r in aggregated.records
        ]
    except (DecodeError, IndexError, ValueError, TypeError):
        return 0  # not a well-formed aggregate: deaggregate hands it over as one plain record
    return sum(not start <= h <= end for h in hashes)


@functools.lru_cache(maxsize=65_536)  # a fleet's partition keys repeat: one MD5 per key, not per record
def _key_hash(partition_key: str) -> int:
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8"), usedforsecurity=False).digest(), "big")


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
