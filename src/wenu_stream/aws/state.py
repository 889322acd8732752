"""Per-shard processing state in DynamoDB, one item per saved checkpoint position.

Table: hash key ``pk`` = ``<app>#<stream>#<shard>``, range key ``pos`` = the
sequence number zero-padded to 64 digits (or ``SHARD_END``). ``save`` puts the
state valid after the batch ending at ``sequence``; the driver checkpoints
that sequence only afterwards. ``load`` reads exactly the checkpoint's item.
Old items are pruned, keeping the newest few.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from wenu_stream.ingest.rebuild import RebuildMarker
from wenu_stream.model import SHARD_END

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient as SyncDynamoDBClient
    from types_aiobotocore_dynamodb.client import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import AttributeValueTypeDef

_KEEP = 3
_PRUNE_EVERY = 16  # saves between two prunes: one Query per 16 batches, not per batch


def pos_key(sequence: str) -> str:
    """Sortable range key of a sequence number (sentinels pass through)."""
    return sequence if not sequence.isdigit() else sequence.zfill(64)


class DynamoStateStore:
    """Saves and loads shard state blobs through an open aiobotocore DynamoDB client."""

    def __init__(self, client: DynamoDBClient, *, table: str, app: str, stream: str) -> None:
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
            TableName=self._table,
            Item={"pk": {"S": pk}, "pos": {"S": pos_key(sequence)}, "state": {"B": blob}},
        )
        count = self._saves[pk] = self._saves.get(pk, 0) + 1
        if sequence.isdigit() and count % _PRUNE_EVERY == 0:
            await self._prune(pk)

    async def load(self, shard_id: str, sequence: str) -> bytes | None:
        """The state saved at exactly ``sequence``, or None."""
        out = await self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": self._prefix + shard_id}, "pos": {"S": pos_key(sequence)}},
            ConsistentRead=True,
        )
        item = out.get("Item")
        return bytes(item["state"]["B"]) if item else None

    async def rebuild_marker(self, shard_id: str) -> RebuildMarker | None:
        """The shard's rebuild marker (``ingest.rebuild``; same table, its own key), or None."""
        return await read_rebuild_marker(self._client, self._table, self._app, self._stream, shard_id)

    async def _prune(self, pk: str) -> None:
        out = await self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND pos < :end",
            ExpressionAttributeValues={":pk": {"S": pk}, ":end": {"S": SHARD_END}},
            ProjectionExpression="pos",
            ScanIndexForward=False,
            ConsistentRead=True,
        )
        for item in out.get("Items", [])[_KEEP:]:
            await self._client.delete_item(TableName=self._table, Key={"pk": {"S": pk}, "pos": item["pos"]})


# Rebuild markers (contract in ``wenu_stream.ingest.rebuild``): same table, their own hash key.
MARKER_POS = "marker"


def marker_key(app: str, stream: str, shard_id: str) -> dict[str, dict[str, str]]:
    """The state-table key of a shard's marker."""
    return {"pk": {"S": f"rebuild#{app}#{stream}#{shard_id}"}, "pos": {"S": MARKER_POS}}


def _to_item(marker: RebuildMarker) -> dict[str, dict[str, str]]:
    return marker_key(marker.app, marker.stream, marker.shard_id) | {
        "from_checkpoint": {"S": marker.from_checkpoint},
        "generation": {"N": str(marker.generation)},
        "target": {"S": marker.target},
        "created_at": {"S": marker.created_at},
    }


def _from_item(
    app: str, stream: str, shard_id: str, item: Mapping[str, AttributeValueTypeDef]
) -> RebuildMarker:
    return RebuildMarker(
        app=app,
        stream=stream,
        shard_id=shard_id,
        from_checkpoint=item["from_checkpoint"]["S"],
        generation=int(item["generation"]["N"]),
        target=item.get("target", {}).get("S", ""),
        created_at=item.get("created_at", {}).get("S", ""),
    )


def get_marker(
    ddb: SyncDynamoDBClient, table: str, app: str, stream: str, shard_id: str
) -> RebuildMarker | None:
    """The shard's marker (sync boto3 client), or None."""
    out = ddb.get_item(TableName=table, Key=marker_key(app, stream, shard_id), ConsistentRead=True)
    return _from_item(app, stream, shard_id, out["Item"]) if "Item" in out else None


async def read_rebuild_marker(
    client: DynamoDBClient, table: str, app: str, stream: str, shard_id: str
) -> RebuildMarker | None:
    """The shard's marker through an open aiobotocore DynamoDB client, or None (for the processor)."""
    out = await client.get_item(TableName=table, Key=marker_key(app, stream, shard_id), ConsistentRead=True)
    return _from_item(app, stream, shard_id, out["Item"]) if "Item" in out else None


def next_generation(
    ddb: SyncDynamoDBClient, table: str, app: str, stream: str, shard_ids: Iterable[str]
) -> int:
    """One more than the highest marker generation of the given shards (all of the stream's leases)."""
    markers = [get_marker(ddb, table, app, stream, shard_id) for shard_id in shard_ids]
    return 1 + max((m.generation for m in markers if m is not None), default=0)


def write_marker(
    ddb: SyncDynamoDBClient,
    table: str,
    *,
    app: str,
    stream: str,
    shard_id: str,
    from_checkpoint: str,
    target: str,
    now: dt.datetime,
    generation: int | None = None,
) -> RebuildMarker:
    """Write a shard's marker (default generation: its previous one + 1), conditional on the marker read (sync)."""
    previous = get_marker(ddb, table, app, stream, shard_id)
    if generation is None:
        generation = (previous.generation if previous else 0) + 1
    if previous is not None and generation <= previous.generation:
        raise ValueError(
            f"rebuild generation {generation} of {shard_id} is not above its marker's {previous.generation}"
        )
    marker = RebuildMarker(
        app=app,
        stream=stream,
        shard_id=shard_id,
        from_checkpoint=from_checkpoint,
        generation=generation,
        target=target,
        created_at=now.isoformat(timespec="seconds"),
    )
    if previous is None:
        ddb.put_item(TableName=table, Item=_to_item(marker), ConditionExpression="attribute_not_exists(pk)")
    else:
        ddb.put_item(
            TableName=table,
            Item=_to_item(marker),
            ConditionExpression="generation = :g",
            ExpressionAttributeValues={":g": {"N": str(previous.generation)}},
        )
    return marker
