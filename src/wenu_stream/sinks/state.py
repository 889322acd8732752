"""Per-shard processing state in DynamoDB, one item per saved checkpoint position.

Table: hash key ``pk`` = ``<app>#<stream>#<shard>``, range key ``pos`` = the
sequence number zero-padded to 64 digits (or ``SHARD_END``). ``save`` puts the
state valid after the batch ending at ``sequence``; the driver checkpoints
that sequence only afterwards. ``load`` reads exactly the checkpoint's item.
Old items are pruned, keeping the newest few.
"""

from __future__ import annotations

from typing import Any

from wenu_stream.ops.rebuild import RebuildMarker, read_rebuild_marker

SHARD_END = "SHARD_END"
_KEEP = 3
_PRUNE_EVERY = 16  # saves between two prunes: one Query per 16 batches, not per batch


def pos_key(sequence: str) -> str:
    """Sortable range key of a sequence number (sentinels pass through)."""
    return sequence if not sequence.isdigit() else sequence.zfill(64)


class DynamoStateStore:
    """Saves and loads shard state blobs through an open aiobotocore DynamoDB client."""

    def __init__(self, client: Any, *, table: str, app: str, stream: str) -> None:
        self._client = client
        self._table = table
        self._app = app
        self._stream = stream
        self._prefix = f"{app}#{stream}#"
        self._saves: dict[str, int] = {}

    async def save(self, shard_id: str, sequence: str, blob: bytes) -> None:
        """Store the state valid at ``sequence``, then prune items older than the newest few."""
        pk = self._prefix + shard_id
        await self._client.put_item(
            TableName=self._table, Item={"pk": {"S": pk}, "pos": {"S": pos_key(sequence)}, "state": {"B": blob}}
        )
        count = self._saves[pk] = self._saves.get(pk, 0) + 1
        if sequence.isdigit() and count % _PRUNE_EVERY == 0:
            await self._prune(pk)

    async def load(self, shard_id: str, sequence: str) -> bytes | None:
        """The state saved at exactly ``sequence``, or None."""
        out = await self._client.get_item(
            TableName=self._table, Key={"pk": {"S": self._prefix + shard_id}, "pos": {"S": pos_key(sequence)}},
            ConsistentRead=True,
        )
        item = out.get("Item")
        return bytes(item["state"]["B"]) if item else None

    async def rebuild_marker(self, shard_id: str) -> RebuildMarker | None:
        """The shard's rebuild marker (``ops.rebuild``; same table, its own key), or None."""
        return await read_rebuild_marker(self._client, self._table, self._app, self._stream, shard_id)

    async def _prune(self, pk: str) -> None:
        out = await self._client.query(
            TableName=self._table, KeyConditionExpression="pk = :pk AND pos < :end",
            ExpressionAttributeValues={":pk": {"S": pk}, ":end": {"S": SHARD_END}},
            ProjectionExpression="pos", ScanIndexForward=False, ConsistentRead=True,
        )
        for item in out.get("Items", [])[_KEEP:]:
            await self._client.delete_item(TableName=self._table, Key={"pk": {"S": pk}, "pos": item["pos"]})
