"""Values shared by the drivers and the pipeline."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Final, Protocol

import msgspec


class Clock(Protocol):
    """Epoch milliseconds. Injected so pure code never reads the wall clock."""

    def __call__(self) -> int: ...


# Checkpoint sentinels of the KCL lease table (a real checkpoint is "<seq>" or "<seq>:<sub>").
TRIM_HORIZON: Final = "TRIM_HORIZON"  # Final: their literal types fit the SDK's ShardIteratorType
LATEST: Final = "LATEST"
AT_TIMESTAMP: Final = "AT_TIMESTAMP"
SHARD_END: Final = "SHARD_END"
SENTINELS = frozenset({TRIM_HORIZON, LATEST, AT_TIMESTAMP, SHARD_END})


def parse_checkpoint(checkpoint: str | None) -> tuple[str | None, int]:
    """Split a checkpoint (``"<seq>"``, ``"<seq>:<sub>"`` or a sentinel) into sequence and sub-sequence."""
    if not checkpoint or checkpoint in SENTINELS:
        return None, 0
    seq, _, sub = checkpoint.partition(":")
    return seq, int(sub or 0)


class KinesisRecord(msgspec.Struct, rename="pascal", frozen=True, gc=False):
    """One Kinesis record as a driver hands it over.

    Field names map onto the GetRecords JSON (``SequenceNumber``, ``Data``,
    ...), so the native driver decodes responses straight into this struct
    (``Data`` is base64 in JSON; msgspec decodes it to bytes).
    ``sub_sequence_number`` is set by the KCL path, whose records arrive
    already deaggregated; the native driver leaves it 0 and deaggregates.
    """

    sequence_number: str
    data: bytes
    partition_key: str
    approximate_arrival_timestamp: float = 0.0  # epoch seconds, as the service sends it
    sub_sequence_number: int = 0


class HashRange(msgspec.Struct, frozen=True):
    """A shard's hash-key range (inclusive), where Kinesis puts a record whose partition key hashes into it."""

    start: int
    end: int

    def holds(self, partition_key: str) -> bool:
        """True if a record put with ``partition_key`` (no explicit hash key) lands in this range."""
        return self.start <= hash_key(partition_key) <= self.end


def hash_key(partition_key: str) -> int:
    """The hash key Kinesis gives ``partition_key``: its MD5 as a 128-bit unsigned integer."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8"), usedforsecurity=False).digest(), "big")


class Position(msgspec.Struct, frozen=True, order=True, gc=False):
    """Where a user record sits in a shard: sequence number and sub-sequence number."""

    sequence: int
    sub: int = 0


class SeriesReading(msgspec.Struct, frozen=True, kw_only=True):
    """One accepted reading after enrichment: a point of a business time series.

    Produced by enrichment from the catalog; consumed by stats, alarms and the
    warehouse staging. ``value`` is normalised (``v * scale + offset``).
    ``(device, seq, index)`` orders ties; ``position`` is where the message
    sits in its shard.
    """

    series: str
    company: str
    site: str
    timezone: str  # IANA zone of the site
    kind: str  # "gauge" | "counter"
    unit: str
    device: str
    ch: str
    seq: int  # the device's message counter
    index: int  # position of the reading in the message's readings
    t: int  # measurement time, epoch ms
    value: float
    raw_value: float
    position: Position = Position(0, 0)
    sent_at: int = (
        0  # the message's sent_at: with (device, seq) it tells a restarted counter's messages apart
    )
    partition_key: str = ""  # the message's partition key (its shard's hash range holds it); "" if unknown


def out_of_range(value: float, *, largest: float, smallest: float, what: str) -> str | None:
    """Why a finite value cannot be stored as ``what`` (``smallest <= |value| < largest``, or 0), or None.

    DynamoDB numbers lie between 1e-130 and 1e126 in magnitude: a sink refuses a value its items cannot hold when
    the reading comes in, so the processor dead-letters that record (``ingest.failures``) instead of the store
    refusing an item later, after the batch was committed.
    """
    magnitude = abs(value)
    if magnitude >= largest:
        return f"value {value!r} is too large for {what} (|value| must stay below {largest:g})"
    if 0 < magnitude < smallest:
        return f"value {value!r} is too small for {what} (|value| must be 0 or at least {smallest:g})"
    return None


class UnmappedReason(StrEnum):
    """Why a reading has no series."""

    UNKNOWN_DEVICE = "unknown_device"  # the catalog has no active device of that id
    UNKNOWN_CHANNEL = "unknown_channel"  # the device is known, the channel is not mapped
    VALUE_OUT_OF_RANGE = "value_out_of_range"  # v * scale + offset is not finite (a catalog scale mistake)


class Unmapped(msgspec.Struct, frozen=True, kw_only=True):
    """A reading the catalog does not map, with everything needed to process it later."""

    device: str
    ch: str
    t: int
    v: float
    seq: int
    index: int  # position of the reading in the message's readings
    reason: UnmappedReason
    position: Position = Position(0, 0)
    sent_at: int = 0  # the message's sent_at (see SeriesReading)
