"""Duplicate detection by ``(device, seq)``, pure.

Per device we keep the highest ``seq`` accepted and a bitmask of which of the
``window`` sequence numbers below it were accepted. A repeat inside the window
is a duplicate; a sequence number older than the window cannot be told apart
from a very late message and is treated as a duplicate too (counted, never
silently lost: it is reported as ``stale`` so operators can see it).

The state belongs to a shard (a device's partition key always maps to one
shard) and is saved with every checkpoint, so a replay after a crash starts
from the state as of the checkpoint and counts nothing twice.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from enum import IntEnum

import msgspec


class Seen(IntEnum):
    """The verdict on one message."""

    NEW = 0
    DUPLICATE = 1
    STALE = 2


class _Snapshot(msgspec.Struct, array_like=True):
    window: int
    devices: dict[str, tuple[int, bytes]]  # device -> (highest seq, bitmask as little-endian bytes)


class Dedup:
    """Remembers which ``(device, seq)`` a shard accepted."""

    __slots__ = ("_devices", "_full", "window")

    def __init__(self, window: int = 4096, devices: dict[str, tuple[int, int]] | None = None) -> None:
        self.window = window
        self._full = (1 << window) - 1
        self._devices: dict[str, tuple[int, int]] = devices or {}

    def check(self, device: str, seq: int) -> Seen:
        """Record ``(device, seq)`` and say whether it is new."""
        entry = self._devices.get(device)
        if entry is None:
            self._devices[device] = (seq, 1)
            return Seen.NEW
        hi, mask = entry
        if seq > hi:
            shift = seq - hi
            mask = ((mask << shift) | 1) & self._full if shift < self.window else 1
            self._devices[device] = (seq, mask)
            return Seen.NEW
        offset = hi - seq
        if offset >= self.window:
            return Seen.STALE
        bit = 1 << offset
        if mask & bit:
            return Seen.DUPLICATE
        self._devices[device] = (hi, mask | bit)
        return Seen.NEW

    def __len__(self) -> int:
        return len(self._devices)

    def dump(self) -> bytes:
        """Serialise (msgpack, zlib) for the state store."""
        devices = {
            d: (hi, mask.to_bytes((mask.bit_length() + 7) // 8, "little"))
            for d, (hi, mask) in self._devices.items()
        }
        return zlib.compress(msgspec.msgpack.encode(_Snapshot(self.window, devices)), 1)

    @classmethod
    def load(cls, blob: bytes | None, window: int) -> Dedup:
        """Rebuild from ``dump()`` output; an empty blob is an empty state."""
        if not blob:
            return cls(window)
        snap = msgspec.msgpack.decode(zlib.decompress(blob), type=_Snapshot)
        dedup = cls(window)
        for device, (hi, raw) in snap.devices.items():
            dedup._devices[device] = (hi, int.from_bytes(raw, "little") & dedup._full)
        return dedup

    @classmethod
    def merged(cls, parts: Iterable[Dedup], window: int) -> Dedup:
        """Union of parent shards' states, for a child shard after a split or merge."""
        out = cls(window)
        for part in parts:
            for device, (hi, mask) in part._devices.items():
                mine = out._devices.get(device)
                if mine is None:
                    out._devices[device] = (hi, mask & out._full)
                    continue
                top = max(hi, mine[0])
                a = (mine[1] << (top - mine[0])) if top - mine[0] < window else 0
                b = (mask << (top - hi)) if top - hi < window else 0
                out._devices[device] = (top, (a | b) & out._full)
        return out
