"""Company Stats items in DynamoDB: the ``ports.StatsStore`` adapter (layout in ``stats.items``).

Conditional puts carry the fences. Throttled calls are retried by botocore
(``aws.common.client_config``), unprocessed keys by ``aws.common.batch_get``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from wenu_stream.aws.common import ConditionFailed, batch_get, paginate, write_if
from wenu_stream.aws.tables import UNPUBLISHED_INDEX
from wenu_stream.stats import items
from wenu_stream.stats.items import Item

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import PutItemInputTypeDef

P = ParamSpec("P")
R = TypeVar("R")


class DynamoStatsStore:
    """``StatsStore`` on an open aiobotocore DynamoDB client."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table
        self.calls: Counter[str] = Counter()  # operation -> calls made (for benchmarks)

    async def get_states(self, series: Sequence[str]) -> dict[str, Item]:
        keys = [(items.state_pk(s), 0) for s in series]
        return {i["series"]["S"]: i for i in await self._batch_get(keys)}

    async def get_windows(self, keys: Sequence[tuple[str, str, int]]) -> list[Item]:
        return await self._batch_get([(items.window_pk(s, w), start) for s, w, start in keys])

    async def put_state(self, item: Item, base: str | None) -> str | None:
        condition = "attribute_not_exists(pk)" if base is None else "fence = :base"
        values = {} if base is None else {":base": {"S": base}}
        return await self._put(item, condition, values)

    async def put_window(self, item: Item) -> bool:
        shard = item["fence"]["S"].split("/", 1)[0]
        stored = await self._put(
            item,
            "attribute_not_exists(pk) OR NOT begins_with(fence, :shard) OR fence < :fence",
            {":shard": {"S": items.shard_prefix(shard)}, ":fence": item["fence"]},
        )
        return stored is None

    async def unpublished(self, shard_id: str) -> list[str]:
        query = self._counted("query", self._client.query)
        found = paginate(query, TableName=self._table, IndexName=UNPUBLISHED_INDEX,
                         KeyConditionExpression="unpublished_shard = :s",
                         ExpressionAttributeValues={":s": {"S": shard_id}})  # fmt: skip
        return sorted({items.series_of_state_pk(i["pk"]["S"]) async for i in found})

    async def _put(self, item: Item, condition: str, values: dict[str, Any]) -> str | None:
        request: PutItemInputTypeDef = {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": condition,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if values:
            request["ExpressionAttributeValues"] = values
        out = await write_if(self._counted("put_item", self._client.put_item), **request)
        if isinstance(out, ConditionFailed):
            old = out.item or await self._stored({"pk": item["pk"], "sk": item["sk"]})
            return str(old.get("fence", {}).get("S", ""))
        return None

    async def _stored(self, key: Item) -> Item:
        """The stored item (an endpoint that does not return it on a failed condition: dynalite)."""
        get = self._counted("get_item", self._client.get_item)
        out = await get(TableName=self._table, Key=key, ConsistentRead=True)
        return dict(out.get("Item", {}))

    async def _batch_get(self, keys: Sequence[tuple[str, int]]) -> list[Item]:
        get = self._counted("batch_get_item", self._client.batch_get_item)
        return await batch_get(get, self._table, [{"pk": {"S": pk}, "sk": {"N": str(sk)}} for pk, sk in keys])

    def _counted(self, operation: str, call: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """``call``, counted in ``calls[operation]``."""

        async def counted(*args: P.args, **kwargs: P.kwargs) -> R:
            self.calls[operation] += 1
            return await call(*args, **kwargs)

        return counted
