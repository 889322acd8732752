"""Every DynamoDB table of the stream path, as one spec each: read by provisioning, the adapters and deploy/cdk.

A spec names keys and types, global secondary indexes and the TTL attribute;
the table *name* comes from the configuration (``Config``), so parallel stages
differ by name only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import msgspec

from wenu_stream.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeDefinitionTypeDef, KeySchemaElementTypeDef


class Key(msgspec.Struct, frozen=True):
    name: str
    type: Literal["S", "N"] = "S"


class Index(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    hash: Key
    range: Key | None = None
    projection: Literal["KEYS_ONLY", "ALL"] = "KEYS_ONLY"


class TableSpec(msgspec.Struct, frozen=True, kw_only=True):
    role: str  # what it holds, for messages and the CDK construct id
    name_of: Callable[[Config], str]
    hash: Key
    range: Key | None = None
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None


BY_SHARD = "by-shard"  # alarm instances of a shard
PENDING_INDEX = "pending"  # ledger entries not published yet (sparse)
UNPUBLISHED_INDEX = "unpublished"  # series states holding windows not yet written as items, by shard (sparse)

STATE = TableSpec(role="state", name_of=lambda c: c.sinks.state_table, hash=Key("pk"), range=Key("pos"))
STATS = TableSpec(
    role="stats",
    name_of=lambda c: c.stats.table,
    hash=Key("pk"),
    range=Key("sk", "N"),
    indexes=(Index(name=UNPUBLISHED_INDEX, hash=Key("unpublished_shard")),),
    ttl_attribute="expires_at",
)
ALARM_STATE = TableSpec(
    role="alarm-state",
    name_of=lambda c: c.alarms.state_table,
    hash=Key("pk"),
    indexes=(Index(name=BY_SHARD, hash=Key("shard_key")),),
)
TRANSITIONS = TableSpec(
    role="alarm-transitions",
    name_of=lambda c: c.alarms.transitions_table,
    hash=Key("series"),
    range=Key("sk"),
    indexes=(Index(name=PENDING_INDEX, hash=Key("pending_shard"), range=Key("sk")),),
)

TABLES: tuple[TableSpec, ...] = (STATE, STATS, ALARM_STATE, TRANSITIONS)


def key_schema(hash_key: Key, range_key: Key | None) -> list[KeySchemaElementTypeDef]:
    keys: list[KeySchemaElementTypeDef] = [{"AttributeName": hash_key.name, "KeyType": "HASH"}]
    if range_key is not None:
        keys.append({"AttributeName": range_key.name, "KeyType": "RANGE"})
    return keys


def attribute_definitions(*keys: Key | None) -> list[AttributeDefinitionTypeDef]:
    """Definitions of the given key attributes, once each (a request may define only the keys it uses)."""
    seen: dict[str, Literal["S", "N"]] = {}
    for key in keys:
        if key is not None:
            seen.setdefault(key.name, key.type)
    return [{"AttributeName": n, "AttributeType": t} for n, t in seen.items()]
