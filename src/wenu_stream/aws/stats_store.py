"""Company Stats items in DynamoDB: the ``ports.StatsStore`` adapter (layout in ``stats.items``).

Conditional puts carry the fences; throttled calls and unprocessed keys are
retried with backoff.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from wenu_stream.aws.common import THROTTLED, error_code, returned_item
from wenu_stream.errors import SinkError
from wenu_stream.stats import items
from wenu_stream.stats.items import Item
from wenu_stream.tasks import all_or_first_error

_BATCH_GET = 100  # BatchGetItem's limit


class DynamoStatsStore:
    """``StatsStore`` on an open aiobotocore DynamoDB client; throttled calls are retried with backoff."""

    def __init__(self, client: Any, table: str, *, attempts: int = 8) -> None:
        self._client = client
        self._table = table
        self._attempts = attempts
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

    async def _put(self, item: Item, condition: str, values: dict[str, Any]) -> str | None:
        args: dict[str, Any] = {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": condition,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if values:
            args["ExpressionAttributeValues"] = values
        try:
            await self._call("put_item", args)
            return None
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return str(returned_item(exc).get("fence", {}).get("S", ""))

    async def _batch_get(self, keys: Sequence[tuple[str, int]]) -> list[Item]:
        chunks = [keys[i : i + _BATCH_GET] for i in range(0, len(keys), _BATCH_GET)]
        pages = await all_or_first_error(self._batch_get_chunk(c) for c in chunks)
        return [item for page in pages for item in page]

    async def _batch_get_chunk(self, keys: Sequence[tuple[str, int]]) -> list[Item]:
        found: list[Item] = []
        request: dict[str, Any] = {
            self._table: {
                "Keys": [{"pk": {"S": pk}, "sk": {"N": str(sk)}} for pk, sk in keys],
                "ConsistentRead": True,
            }
        }
        for attempt in range(self._attempts):
            out = await self._call("batch_get_item", {"RequestItems": request})
            found.extend(out.get("Responses", {}).get(self._table, []))
            request = out.get("UnprocessedKeys") or {}
            if not request:
                return found
            await asyncio.sleep(min(2.0, 0.05 * 2**attempt))  # throttled: back off, then ask for the rest
        raise SinkError(f"BatchGetItem on {self._table} kept returning unprocessed keys")

    async def _call(self, operation: str, args: dict[str, Any]) -> Any:
        for attempt in range(self._attempts):
            self.calls[operation] += 1
            try:
                return await getattr(self._client, operation)(**args)
            except ClientError as exc:
                if error_code(exc) not in THROTTLED or attempt == self._attempts - 1:
                    raise
            await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")
