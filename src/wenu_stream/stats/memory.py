"""``StatsStore`` in a dict, with DynamoDB's conditions: a fake for fast tests and benchmarks of the stats sink."""

from __future__ import annotations

from collections.abc import Sequence

from wenu_stream.stats import items
from wenu_stream.stats.items import Item


class InMemoryStatsStore:
    """``StatsStore`` in a dict, with DynamoDB's conditions; for fast tests of the sink."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, int], Item] = {}

    async def get_states(self, series: Sequence[str]) -> dict[str, Item]:
        found = (self.items.get((items.state_pk(s), 0)) for s in series)
        return {i["series"]["S"]: i for i in found if i is not None}

    async def get_windows(self, keys: Sequence[tuple[str, str, int]]) -> list[Item]:
        found = (self.items.get((items.window_pk(s, w), start)) for s, w, start in keys)
        return [i for i in found if i is not None]

    async def put_state(self, item: Item, base: str | None) -> str | None:
        old = self.items.get(_key(item))
        stored = None if old is None else old["fence"]["S"]
        if stored != base:
            return stored or ""
        self.items[_key(item)] = item
        return None

    async def put_window(self, item: Item) -> bool:
        old = self.items.get(_key(item))
        new = item["fence"]["S"]
        if (
            old is not None
            and old["fence"]["S"].split("/")[0] == new.split("/")[0]
            and old["fence"]["S"] >= new
        ):
            return False
        self.items[_key(item)] = item
        return True


def _key(item: Item) -> tuple[str, int]:
    return item["pk"]["S"], int(item["sk"]["N"])
