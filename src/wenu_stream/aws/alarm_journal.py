"""A shard's alarm journal in the alarm state table: the instance states of each commit in one item, not one each.

Every reading changes every instance of its series (the time and value it last
evaluated, its version), so writing each changed instance at each commit costs
four writes a reading with four rules. Instead ``aws.alarm_state`` writes an
instance's own item only when it matters to a reader or to another shard
(a new instance, a changed state, a notifying transition, a worker taking the
shard over, the end of the shard) and puts the other changed states of a commit
into one journal item of the shard. Every ``COMPACT_EVERY`` journal items the
shard's states are folded into a snapshot (one item per ``CHUNK_BYTES`` of
compressed states) and the journal starts over.

Items (hash key ``pk``; none has ``shard_key`` or ``rule``, so neither the
``by-shard`` index nor the instance scans see them):

- the head, the shard's clock item ``@shard#<stream>#<shard>``: the clock, the
  ``owner`` token of the worker that loaded the shard last, and the keys of the
  live ``snapshot`` and ``journal`` items (lists of strings);
- journal items ``@j#<stream>#<shard>#<uuid>`` and snapshot items
  ``@s#<stream>#<shard>#<uuid>``: ``blob`` = zlib(msgpack list of InstanceState).

Ordering and fencing: a journal or snapshot item is written first (a fresh key),
then the head is updated on condition that ``owner`` is still this worker's
token; a worker that loads the shard writes its own token first, so an owner
that lost the shard fails its next commit (``StaleAlarmState``) instead of
adding to the journal. A crash between the two leaves an unreferenced item.
Loading takes, per instance, the highest version among the snapshot, the
journal and the instance items: evaluation is deterministic, so a version
names one state.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import msgspec

from wenu_stream.alarms.engine import InstanceState
from wenu_stream.alarms.shard import InstanceKey
from wenu_stream.aws.common import ConditionFailed, Item, batch_get, write_if
from wenu_stream.tasks import bounded

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import WriteRequestTypeDef

COMPACT_EVERY = 24  # journal items of a shard before they are folded into a snapshot (2 minutes at 5 s)
CHUNK_BYTES = 300_000  # compressed states per snapshot item (DynamoDB's item limit is 400 KB)
_ENCODE = msgspec.msgpack.Encoder().encode
_DECODE = msgspec.msgpack.Decoder(list[InstanceState]).decode


def pack(states: Sequence[InstanceState]) -> bytes:
    return zlib.compress(_ENCODE(list(states)), 1)


def unpack(blob: bytes) -> list[InstanceState]:
    return _DECODE(zlib.decompress(blob))


def chunks(states: Sequence[InstanceState], limit: int = CHUNK_BYTES) -> list[bytes]:
    """Compressed blobs of ``states``, each at most ``limit`` bytes (the list split evenly until they fit)."""
    parts = 1
    while True:
        size = -(-len(states) // parts) if states else 0
        blobs = [pack(states[i : i + size]) for i in range(0, len(states), size)] if states else [pack([])]
        if all(len(b) <= limit for b in blobs) or size <= 1:
            return blobs
        parts *= 2


def newest(*groups: Iterable[InstanceState]) -> dict[InstanceKey, InstanceState]:
    """Per instance, the state of the highest version."""
    out: dict[InstanceKey, InstanceState] = {}
    for group in groups:
        for s in group:
            key = (s.rule, s.series)
            if key not in out or s.version > out[key].version:
                out[key] = s
    return out


class Head(msgspec.Struct, kw_only=True):
    """What the head item says about the journal."""

    snapshot: list[str] = []
    journal: list[str] = []


def head_of(item: Item | None) -> Head:
    if item is None:
        return Head()
    return Head(
        snapshot=[v["S"] for v in item.get("snapshot", {}).get("L", [])],
        journal=[v["S"] for v in item.get("journal", {}).get("L", [])],
    )


class Journal:
    """The journal items of the shards a store holds, on an open DynamoDB client."""

    def __init__(self, client: DynamoDBClient, table: str, token: str) -> None:
        self._client = client
        self._table = table
        self.token = token

    async def read(self, head: Head) -> list[InstanceState]:
        """Every state in the snapshot and journal items the head names (older ones first)."""
        keys = [*head.snapshot, *head.journal]
        if not keys:
            return []
        found = await batch_get(self._client.batch_get_item, self._table, [{"pk": {"S": k}} for k in keys])
        blobs = {i["pk"]["S"]: bytes(i["blob"]["B"]) for i in found}
        return [s for k in keys if k in blobs for s in unpack(blobs[k])]

    async def claim(self, head_pk: str) -> None:
        """Make this worker the shard's owner (its commits are refused once another worker claims it)."""
        await self._client.update_item(
            TableName=self._table, Key={"pk": {"S": head_pk}}, UpdateExpression="SET #o = :me",
            ExpressionAttributeNames={"#o": "owner"}, ExpressionAttributeValues={":me": {"S": self.token}},
        )  # fmt: skip

    async def append(
        self, head_pk: str, prefix: str, states: Sequence[InstanceState], fields: Item
    ) -> str | None:
        """Write one journal item and add it to the head with ``fields`` (the clock); its key, or None if
        the shard has another owner."""
        key = f"@j#{prefix}#{uuid.uuid4().hex}"
        await self._client.put_item(
            TableName=self._table, Item={"pk": {"S": key}, "blob": {"B": pack(states)}}
        )
        done = await self._set_head(head_pk, fields, append=key)
        if not done:
            await self.drop([key])
        return key if done else None

    async def compact(
        self, head_pk: str, prefix: str, states: Sequence[InstanceState], old: Head, fields: Item
    ) -> Head | None:
        """Write a snapshot of ``states`` and make it the head's, with an empty journal and ``fields``; None
        if the shard has another owner."""
        blobs = chunks(states)
        keys = [f"@s#{prefix}#{uuid.uuid4().hex}" for _ in blobs]
        puts = [
            lambda k=k, b=b: self._client.put_item(
                TableName=self._table, Item={"pk": {"S": k}, "blob": {"B": b}}
            )
            for k, b in zip(keys, blobs, strict=True)
        ]
        await bounded(puts, 8)
        head: Item = {"snapshot": {"L": [{"S": k} for k in keys]}, "journal": {"L": []}}
        done = await self._set_head(head_pk, head | fields)
        await self.drop([*old.snapshot, *old.journal] if done else keys)
        return Head(snapshot=keys) if done else None

    async def set_clock(self, head_pk: str, fields: Item) -> bool:
        return await self._set_head(head_pk, fields)

    async def drop(self, keys: Sequence[str]) -> None:
        """Delete items no head names any more (best effort: an unreferenced item is only garbage)."""
        for i in range(0, len(keys), 25):
            requests: list[WriteRequestTypeDef] = [
                {"DeleteRequest": {"Key": {"pk": {"S": k}}}} for k in keys[i : i + 25]
            ]
            await self._client.batch_write_item(RequestItems={self._table: requests})

    async def _set_head(self, head_pk: str, fields: Item, append: str | None = None) -> bool:
        """SET ``fields`` on the head (and add ``append`` to its journal) while this worker owns the shard."""
        names = {f"#h{i}": name for i, name in enumerate(fields)} | {"#o": "owner"}
        values: Item = {f":h{i}": value for i, value in enumerate(fields.values())}
        sets = [f"#h{i} = :h{i}" for i in range(len(fields))]
        if append is not None:
            names["#j"] = "journal"
            values |= {":none": {"L": []}, ":new": {"L": [{"S": append}]}}
            sets.append("#j = list_append(if_not_exists(#j, :none), :new)")
        out = await write_if(
            self._client.update_item, TableName=self._table, Key={"pk": {"S": head_pk}},
            UpdateExpression="SET " + ", ".join(sets), ConditionExpression="#o = :me",
            ExpressionAttributeNames=names, ExpressionAttributeValues=values | {":me": {"S": self.token}},
        )  # fmt: skip
        return not isinstance(out, ConditionFailed)
