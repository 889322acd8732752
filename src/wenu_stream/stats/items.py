"""DynamoDB item layout of Company Stats, pure (attribute-value maps in, values out).

Table ``stats.table``, hash key ``pk`` (S), range key ``sk`` (N):

- window items, ``pk = "<series>#<window>"``, ``sk`` = window start (epoch ms):
  readable ``series``, ``window``, ``start``/``end`` (ISO 8601: the site's
  offset for ``1d``/``1mo``, UTC for ``15m``/``1h``), ``kind``, the aggregates
  of the kind, ``first_at``/``last_at``, ``fence``, ``expires_at`` (TTL, epoch
  s: the window end plus ``ttl_months``) and ``agg`` (the exact aggregate, msgpack);
- series-state items, ``pk = "<series>#state"``, ``sk = 0``: ``state`` (msgpack
  :class:`SeriesState`), ``fence`` and ``redo``, the windows of the last commit
  (zlib msgpack), so a window write lost in a crash is redone from the state.

A fence is ``"<shard>/<sequence, 60 digits>.<sub, 12 digits>"``, or after a
rebuild (``ingest.rebuild``) ``"<shard>/g<generation, 6 digits>/<sequence>.<sub>"``:
one string, ordered like (generation, position) within a shard ("g" sorts after
every digit), so a condition expression can compare it.
"""

from __future__ import annotations

import zlib
from decimal import Decimal
from functools import lru_cache
from typing import Any

import msgspec

from wenu_stream.stats.aggregates import WindowAgg, result
from wenu_stream.stats.engine import Fence, SeriesState, WindowKey
from wenu_stream.timewindows import add_months, iso, window_iso, window_of

STATE_SUFFIX = "#state"
Item = dict[str, Any]


class RedoEntry(msgspec.Struct, frozen=True, array_like=True):
    width: str
    start: int
    agg: WindowAgg


# JSON, not MessagePack: fences and redo entries carry Kinesis sequence numbers (56 digits), which
# exceed MessagePack's 64-bit integers; msgspec's JSON keeps integers of any size.
_AGG = msgspec.json.Decoder(WindowAgg)
_STATE = msgspec.json.Decoder(SeriesState)
_REDO = msgspec.json.Decoder(list[RedoEntry])
_ENC = msgspec.json.Encoder()


def fence_text(fence: Fence | None) -> str | None:
    """The stored form of a fence (None: nothing processed)."""
    if fence is None:
        return None
    if fence.generation:
        return f"{fence.shard}/g{fence.generation:06d}/{fence.sequence:060d}.{fence.sub:012d}"
    return f"{fence.shard}/{fence.sequence:060d}.{fence.sub:012d}"


def fence_generation(text: str) -> int:
    """The rebuild generation of a stored fence (0 for the generation-less form, or no fence)."""
    _, _, rest = text.partition("/")
    return int(rest[1:7]) if rest.startswith("g") else 0


def shard_prefix(shard: str) -> str:
    """What every fence of ``shard`` starts with (for ``begins_with``)."""
    return f"{shard}/"


def window_pk(series: str, width: str) -> str:
    return f"{series}#{width}"


def state_pk(series: str) -> str:
    return series + STATE_SUFFIX


def number(value: float | Decimal) -> dict[str, str]:
    """A DynamoDB number (floats through their shortest repr, so they round-trip exactly)."""
    return {"N": str(Decimal(repr(value)) if isinstance(value, float) else value)}


def expires_at(end_ms: int, ttl_months: int) -> int:
    """TTL attribute (epoch seconds) of an item whose window ends at ``end_ms``."""
    return add_months(end_ms, ttl_months) // 1000


def window_item(state: SeriesState, key: WindowKey, agg: WindowAgg, fence: str, ttl_months: int) -> Item:
    """The item of one window, with its readable attributes."""
    width, start = key
    start_iso, end_iso, expires = _bounds(width, start, state.timezone, ttl_months)
    item: Item = {
        "pk": {"S": window_pk(state.series, width)}, "sk": {"N": str(start)}, "series": {"S": state.series},
        "window": {"S": width}, "start": {"S": start_iso}, "end": {"S": end_iso}, "kind": {"S": state.kind},
        "fence": {"S": fence}, "expires_at": {"N": str(expires)}, "agg": {"B": _ENC.encode(agg)},
    }  # fmt: skip
    for name, value in result(agg, state.kind).items():
        item[name] = {"NULL": True} if value is None else number(value)
    for name, point in (("first_at", agg.first), ("last_at", agg.last)):
        if point is not None:
            item[name] = {"S": iso(point.t, state.timezone)}
    return item


@lru_cache(maxsize=65_536)
def _bounds(width: str, start: int, tz: str, ttl_months: int) -> tuple[str, str, int]:
    """ISO start and end of a window and its TTL (cached: a window is written many times)."""
    end = window_of(start, width, tz)[1]
    return (*window_iso(start, end, width, tz), expires_at(end, ttl_months))


def state_item(state: SeriesState, redo: list[RedoEntry], expires: int) -> Item:
    """The series-state item: the state, its fence and the windows of this commit."""
    item: Item = {
        "pk": {"S": state_pk(state.series)}, "sk": {"N": "0"}, "series": {"S": state.series},
        "kind": {"S": state.kind}, "timezone": {"S": state.timezone}, "fence": {"S": fence_text(state.fence) or ""},
        "state": {"B": _ENC.encode(state)}, "redo": {"B": zlib.compress(_ENC.encode(redo), 1)},
        "expires_at": {"N": str(expires)},
    }  # fmt: skip
    if state.newest is not None:
        item["newest"] = {"N": str(state.newest)}
    return item


def decode_state(item: Item) -> tuple[SeriesState, str, list[RedoEntry]]:
    """State, stored fence and redo of a series-state item."""
    return (
        _STATE.decode(item["state"]["B"]),
        item["fence"]["S"],
        _REDO.decode(zlib.decompress(item["redo"]["B"])),
    )


def decode_window(item: Item) -> tuple[str, WindowKey, WindowAgg, str]:
    """Series, key, aggregate and fence of a window item."""
    series, _, width = item["pk"]["S"].rpartition("#")
    return series, (width, int(item["sk"]["N"])), _AGG.decode(item["agg"]["B"]), item["fence"]["S"]
