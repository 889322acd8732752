"""Duplicate detection by ``(device, seq)`` within time-ordered epochs, pure.

A device numbers its messages (``seq``) and stamps them (``sent_at``). Both
move forward together until the counter restarts (a firmware update, a battery
change, a wrap) or a corrupted counter jumps far ahead. Duplicate memory is
therefore kept per device as a few **epochs**: runs of messages whose seq and
sent_at grow together. An epoch remembers its lowest message ``(lo, lo_at)``,
its highest ``(hi, hi_at)`` and a bitmask of which of the ``window`` seq
numbers up to ``hi`` it accepted.

The rule for a message ``(seq, sent_at)``:

1. The epochs it is **consistent** with are those whose order it keeps: above
   ``hi`` and sent no earlier than ``lo_at``; or at most ``hi`` and sent
   between ``lo_at`` and ``hi_at`` (below ``lo`` then: sent no later than
   ``lo_at``). A restarted counter sends low seqs at later times, so the old
   epoch is not consistent with them: a reboot never makes new data look old.
2. A consistent epoch whose window holds the seq with its bit set: a
   **duplicate** (the same message, sent at a time inside that epoch).
3. A consistent epoch whose window holds the seq (or that it continues by at
   most half a ``window``): **new**, remembered in that epoch (the one with
   the newest ``hi_at`` when several hold it).
4. No consistent epoch, or only ones it jumps past by more than half a
   ``window`` (a stray far-ahead seq, a gap, a restarted counter): **new**, in
   an epoch of its own. So a stray ``seq`` opens its own epoch and the
   device's other messages go on in theirs, and a jump never pushes messages
   still on their way out of the window they belong to.
5. A consistent epoch spans the seq (it is between ``lo`` and ``hi``) but it is
   below the epoch's window, and no other epoch holds it; or no epoch is
   consistent but the message is no newer than an epoch this device
   forgot (at most ``max_epochs`` are kept, the oldest by ``hi_at`` go first,
   folded into a consistent neighbour when there is one): **stale**. It cannot
   be told from a replay; the batch stage dead-letters it with reason
   ``stale_sequence`` and ``dlq redrive`` can bring it back.
6. A re-driven stale message (``force``) is accepted once: its exact
   ``(seq, sent_at)`` is remembered apart (at most ``max_forced`` per device),
   and a second copy of it is a duplicate.

What it cannot tell: a counter that restarts less than half a window after
its epoch began, whose new messages climb past that epoch's ``hi`` while
older ones of the restart are still on their way (out of order across the
restart), continues the old epoch, and a later message of the restart may
then be taken for a repeat of the old epoch's message of the same seq. Time
stamps within an epoch are trusted to grow with seq; a device that re-sends a
message must send it with its original ``sent_at`` (a re-send is the same
message).

The state belongs to a shard (a device's partition key maps to one shard) and
is saved with every checkpoint, so a replay after a crash starts from the
state as of the checkpoint and counts nothing twice. ``merged`` joins the
states of parent shards for a child after a split or a merge.
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


FORMAT = 2
MAX_EPOCHS = 8
MAX_FORCED = 64
_UNKNOWN = -1  # the send time of a state saved before epochs: any time is consistent

# One epoch: [lo, lo_at, hi, hi_at, mask]. Bit k of mask: seq hi - k was accepted.
Epoch = list[int]
LO, LO_AT, HI, HI_AT, MASK = range(5)


class _Device(msgspec.Struct, array_like=True):
    epochs: list[tuple[int, int, int, int, bytes]]
    forgotten_at: int = 0
    forced: list[tuple[int, int]] = []


class _Snapshot(msgspec.Struct, array_like=True):
    format: int
    window: int
    devices: dict[str, _Device]


class _LegacySnapshot(msgspec.Struct, array_like=True):
    window: int
    devices: dict[str, tuple[int, bytes]]  # device -> (highest seq, bitmask as little-endian bytes)


class _Memory:
    """A device's epochs (newest ``hi_at`` last), what it forgot, and what was re-driven."""

    __slots__ = ("epochs", "forced", "forgotten_at")

    def __init__(
        self, epochs: list[Epoch], forgotten_at: int = 0, forced: list[tuple[int, int]] | None = None
    ):
        self.epochs = epochs
        self.forgotten_at = forgotten_at
        self.forced = forced or []


class Dedup:
    """Remembers which ``(device, seq, sent_at)`` a shard accepted (rule in the module docstring)."""

    __slots__ = ("_devices", "_full", "max_epochs", "window")

    def __init__(self, window: int = 4096, max_epochs: int = MAX_EPOCHS) -> None:
        self.window = window
        self.max_epochs = max_epochs
        self._full = (1 << window) - 1
        self._devices: dict[str, _Memory] = {}

    def check(self, device: str, seq: int, sent_at: int) -> Seen:
        """Record ``(device, seq)`` sent at ``sent_at`` and say whether it is new."""
        memory = self._devices.get(device)
        if memory is None:
            self._devices[device] = _Memory([[seq, sent_at, seq, sent_at, 1]])
            return Seen.NEW
        epochs = memory.epochs
        if len(epochs) == 1 and not memory.forced:  # the common case: one epoch, the next message
            e = epochs[0]
            hi = e[HI]
            if hi < seq <= hi + (self.window >> 1) and sent_at >= e[HI_AT] >= 0:
                e[MASK] = ((e[MASK] << (seq - hi)) | 1) & self._full
                e[HI], e[HI_AT] = seq, sent_at
                return Seen.NEW
        return self._check(memory, seq, sent_at)

    def force(self, device: str, seq: int, sent_at: int) -> Seen:
        """A re-driven message: NEW unless it was accepted before (then DUPLICATE); never STALE."""
        verdict = self.check(device, seq, sent_at)
        if verdict is not Seen.STALE:
            return verdict
        memory = self._devices[device]
        memory.forced.append((seq, sent_at))
        del memory.forced[:-MAX_FORCED]
        return Seen.NEW

    def forget(self, device: str, seq: int, sent_at: int) -> None:
        """Un-accept a message (a sink refused it and it was dead-lettered): a re-drive of it is new again."""
        memory = self._devices.get(device)
        if memory is None:
            return
        if (seq, sent_at) in memory.forced:
            memory.forced.remove((seq, sent_at))
        for e in memory.epochs:
            offset = e[HI] - seq
            if _consistent(e, seq, sent_at) and 0 <= offset < self.window:
                e[MASK] &= ~(1 << offset)

    def _check(self, memory: _Memory, seq: int, sent_at: int) -> Seen:
        if (seq, sent_at) in memory.forced:
            return Seen.DUPLICATE
        window = self.window
        home: Epoch | None = None  # the consistent epoch that will remember it
        below = False  # consistent epochs exist, but the seq is below their windows
        for e in memory.epochs:  # oldest hi_at first: the newest holder wins
            if not _consistent(e, seq, sent_at):
                continue
            offset = e[HI] - seq
            if offset >= window:
                below |= seq >= e[LO]  # inside the epoch's span, below its memory (under lo it never saw one)
            elif offset >= 0:
                if e[MASK] >> offset & 1:
                    return Seen.DUPLICATE
                home = e
            elif -offset <= window >> 1:
                home = e
        if home is None:
            if below or (memory.forgotten_at and sent_at <= memory.forgotten_at):
                return Seen.STALE
            memory.epochs.append([seq, sent_at, seq, sent_at, 1])
            self._trim(memory)
            return Seen.NEW
        _remember(home, seq, sent_at, self._full)
        memory.epochs.sort(key=_hi_at)
        return Seen.NEW

    def _trim(self, memory: _Memory) -> None:
        """Keep at most ``max_epochs``: fold the oldest into a consistent neighbour, or forget it."""
        epochs = memory.epochs
        epochs.sort(key=_hi_at)
        while len(epochs) > self.max_epochs:
            old = epochs.pop(0)
            into = next((e for e in epochs if _covers(e, old, self.window)), None)
            if into is not None:
                _fold(into, old, self._full)
            else:
                memory.forgotten_at = max(memory.forgotten_at, old[HI_AT])

    def __len__(self) -> int:
        return len(self._devices)

    def dump(self) -> bytes:
        """Serialise (msgpack, zlib) for the state store."""
        devices = {
            d: _Device(
                [(e[LO], e[LO_AT], e[HI], e[HI_AT], _bytes(e[MASK])) for e in m.epochs],
                m.forgotten_at,
                list(m.forced),
            )
            for d, m in self._devices.items()
        }
        return zlib.compress(msgspec.msgpack.encode(_Snapshot(FORMAT, self.window, devices)), 1)

    @classmethod
    def load(cls, blob: bytes | None, window: int) -> Dedup:
        """Rebuild from ``dump()`` output (or a state saved before epochs); an empty blob is an empty state."""
        dedup = cls(window)
        if not blob:
            return dedup
        raw = zlib.decompress(blob)
        if msgspec.msgpack.decode(raw)[0] != FORMAT:  # the pre-epoch layout [window, {device: [hi, mask]}]
            legacy = msgspec.msgpack.decode(raw, type=_LegacySnapshot)
            for device, (hi, mask) in legacy.devices.items():
                dedup._devices[device] = _Memory([[0, _UNKNOWN, hi, _UNKNOWN, _int(mask) & dedup._full]])
            return dedup
        snap = msgspec.msgpack.decode(raw, type=_Snapshot)
        for device, d in snap.devices.items():
            epochs = [
                [lo, lo_at, hi, hi_at, _int(mask) & dedup._full] for lo, lo_at, hi, hi_at, mask in d.epochs
            ]
            dedup._devices[device] = _Memory(epochs, d.forgotten_at, [tuple(f) for f in d.forced])  # type: ignore[misc]
        return dedup

    @classmethod
    def merged(cls, parts: Iterable[Dedup], window: int) -> Dedup:
        """Union of parent shards' states, for a child shard after a split or merge.

        A device known to several parents keeps every epoch of each (trimmed to
        ``max_epochs`` the usual way), so a re-delivery of any parent's message
        is still a duplicate in the child.
        """
        out = cls(window)
        for part in parts:
            for device, memory in part._devices.items():
                epochs = [list(e) for e in memory.epochs]
                for e in epochs:
                    e[MASK] &= out._full
                mine = out._devices.get(device)
                if mine is None:
                    out._devices[device] = _Memory(epochs, memory.forgotten_at, list(memory.forced))
                    out._trim(out._devices[device])
                    continue
                mine.epochs.extend(epochs)
                mine.forgotten_at = max(mine.forgotten_at, memory.forgotten_at)
                mine.forced = (mine.forced + [f for f in memory.forced if f not in mine.forced])[-MAX_FORCED:]
                out._trim(mine)
        return out


def _consistent(e: Epoch, seq: int, sent_at: int) -> bool:
    """Does a message sent at ``sent_at`` with ``seq`` keep the order of epoch ``e`` (rule 1)?"""
    if e[LO_AT] == _UNKNOWN:  # saved before epochs: no send times below hi; seq decides there
        return seq > e[HI] or e[HI_AT] == _UNKNOWN or sent_at <= e[HI_AT]
    if seq > e[HI]:
        return sent_at >= e[HI_AT] and sent_at >= e[LO_AT]
    if seq >= e[LO]:
        return e[LO_AT] <= sent_at <= e[HI_AT]
    return sent_at <= e[LO_AT]


def _remember(e: Epoch, seq: int, sent_at: int, full: int) -> None:
    hi = e[HI]
    if seq > hi:
        e[MASK] = ((e[MASK] << (seq - hi)) | 1) & full
        e[HI], e[HI_AT] = seq, sent_at
    else:
        e[MASK] |= 1 << (hi - seq)
    if seq < e[LO] and e[LO_AT] != _UNKNOWN:
        e[LO], e[LO_AT] = seq, sent_at


def _covers(e: Epoch, other: Epoch, window: int) -> bool:
    """True when ``other``'s both ends are consistent with ``e`` and inside its window (it can be folded in)."""
    return all(
        _consistent(e, s, t) and 0 <= e[HI] - s < window
        for s, t in ((other[LO], other[LO_AT]), (other[HI], other[HI_AT]))
    )


def _fold(into: Epoch, other: Epoch, full: int) -> None:
    """Set ``other``'s bits in ``into`` (``other``'s ends lie inside ``into``'s window)."""
    into[MASK] |= (other[MASK] << (into[HI] - other[HI])) & full


def _hi_at(e: Epoch) -> int:
    return e[HI_AT]


def _bytes(mask: int) -> bytes:
    return mask.to_bytes((mask.bit_length() + 7) // 8, "little")


def _int(raw: bytes) -> int:
    return int.from_bytes(raw, "little")
