"""DynamoDB item layout of Company Stats, pure (attribute-value maps in, values out).

Table ``stats.table``, hash key ``pk`` (S), range key ``sk`` (N):

- window items, ``pk = "<series>#<window>"``, ``sk`` = window start (epoch ms):
  readable ``series``, ``window``, ``start``/``end`` (ISO 8601: the site's
  offset for ``1d``/``1mo``, UTC for ``15m``/``1h``), ``kind``, the aggregates
  of the kind, ``first_at``/``last_at``, ``fence``, ``expires_at`` (TTL, epoch
  s: the window end plus ``ttl_months``) and ``agg`` (the exact aggregate, msgpack);
- series-state items, ``pk = "<series>#state"``, ``sk = 0``: readable ``series``,
  ``kind``, ``timezone``, ``newest``, ``fence``, ``expires_at``, and ``state``: the
  :class:`SeriesState` and the redo (every window changed and not yet written to
  its own item, so a window write lost in a crash is redone from the state, and
  readers see open windows) packed in one zlib blob, the counter buffer by
  columns of differences (a 60-reading buffer: about 0.4 KB instead of 3 KB, so a
  state write stays within one write unit). Items written before the packing
  (``state`` plain JSON, ``redo`` its own attribute) are still read.

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

from wenu_stream.model import out_of_range
from wenu_stream.stats.aggregates import WindowAgg, result
from wenu_stream.stats.engine import Entry, Fence, SeriesState, WindowKey
from wenu_stream.timewindows import add_months, iso, window_iso, window_of

STATE_SUFFIX = "#state"
Item = dict[str, Any]

# DynamoDB keeps 38 significant digits between 1e-130 and 1e126: a window's exact sum (integer micro-units of up
# to a million readings) stays within them while every value is below 1e26, and min/max at least 1e-120.
LARGEST_VALUE = 1e26
SMALLEST_VALUE = 1e-120


def unstorable(value: float) -> str | None:
    """Why a finite reading's value cannot go into a window item (the store would refuse it), or None."""
    return out_of_range(value, largest=LARGEST_VALUE, smallest=SMALLEST_VALUE, what="a stats window")


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


class _Packed(msgspec.Struct, array_like=True):
    """The ``state`` blob: the state without its buffer, the buffer by columns, the redo."""

    state: SeriesState
    t: list[int]  # differences from the previous entry (the first from 0); the buffer is sorted by t
    seq: list[int]  # differences
    index: list[int]
    devices: list[str]  # each device once
    device: list[int]  # position in devices
    micro: list[int]  # differences
    redo: list[RedoEntry]


_PACKED = msgspec.json.Decoder(_Packed)
_PACKED_TAG = b"z"  # first byte of a packed blob (a plain JSON state starts with "{" or "[")


def _diffs(values: list[int]) -> list[int]:
    return [b - a for a, b in zip([0, *values], values, strict=False)]


def _sums(diffs: list[int]) -> list[int]:
    out, total = [], 0
    for d in diffs:
        total += d
        out.append(total)
    return out


def pack_state(state: SeriesState, redo: list[RedoEntry]) -> bytes:
    """The packed ``state`` blob of a state item."""
    buffer = state.buffer
    devices = list(dict.fromkeys(e.device for e in buffer))
    where = {d: i for i, d in enumerate(devices)}
    packed = _Packed(
        state=msgspec.structs.replace(state, buffer=[]), t=_diffs([e.t for e in buffer]),
        seq=_diffs([e.seq for e in buffer]), index=[e.index for e in buffer], devices=devices,
        device=[where[e.device] for e in buffer], micro=_diffs([e.micro for e in buffer]), redo=redo,
    )  # fmt: skip
    return _PACKED_TAG + zlib.compress(_ENC.encode(packed), 6)


def unpack_state(blob: bytes) -> tuple[SeriesState, list[RedoEntry]]:
    packed = _PACKED.decode(zlib.decompress(blob[1:]))
    columns = zip(
        _sums(packed.t), _sums(packed.seq), packed.index, packed.device, _sums(packed.micro), strict=True
    )
    buffer = [Entry(t, seq, index, packed.devices[d], micro) for t, seq, index, d, micro in columns]
    return msgspec.structs.replace(packed.state, buffer=buffer), packed.redo


def state_item(
    state: SeriesState, redo: list[RedoEntry], expires: int, unpublished: str | None = None
) -> Item:
    """The series-state item: the state, its fence and the windows of this commit.

    ``unpublished`` names the shard whose commit left windows in the redo only (open ones waiting for
    ``publish_s``): the sparse index of that attribute lets a clean stop of the shard find and write them.
    """
    item: Item = {
        "pk": {"S": state_pk(state.series)}, "sk": {"N": "0"}, "series": {"S": state.series},
        "kind": {"S": state.kind}, "timezone": {"S": state.timezone}, "fence": {"S": fence_text(state.fence) or ""},
        "state": {"B": pack_state(state, redo)}, "expires_at": {"N": str(expires)},
    }  # fmt: skip
    if state.newest is not None:
        item["newest"] = {"N": str(state.newest)}
    if unpublished:
        item["unpublished_shard"] = {"S": unpublished}
    return item


def series_of_state_pk(pk: str) -> str:
    """The series of a series-state item's hash key."""
    return pk.removesuffix(STATE_SUFFIX)


def decode_state(item: Item) -> tuple[SeriesState, str, list[RedoEntry]]:
    """State, stored fence and redo of a series-state item (packed, or of the earlier layout)."""
    blob = bytes(item["state"]["B"])
    if blob[:1] == _PACKED_TAG:
        state, redo = unpack_state(blob)
        return state, item["fence"]["S"], redo
    return _STATE.decode(blob), item["fence"]["S"], _REDO.decode(zlib.decompress(item["redo"]["B"]))


def decode_window(item: Item) -> tuple[str, WindowKey, WindowAgg, str]:
    """Series, key, aggregate and fence of a window item."""
    series, _, width = item["pk"]["S"].rpartition("#")
    return series, (width, int(item["sk"]["N"])), _AGG.decode(item["agg"]["B"]), item["fence"]["S"]
