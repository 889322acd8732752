"""What to simulate: ``SimulationConfig`` and its ``FaultRates``, and the parsing of ``--faults``.

Probabilities are per message: each message takes at most one of the wire
faults (``corrupt``, ``unknown_key``, ``tamper``, ``malformed``), so their sum
must stay at most 1; ``duplicate``, ``reorder``, ``gap`` and ``counter_reset``
are drawn independently.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from msgspec import Meta

from wenu_stream.errors import ConfigError

Probability = Annotated[float, Meta(ge=0.0, le=1.0)]
DEFAULT_START_MS: Final = 1_764_300_000_000  # 2025-11-28T03:20:00Z: a fixed instant for reproducible runs
WIRE_FAULTS: Final = ("corrupt", "unknown_key", "tamper", "malformed")


class FaultRates(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-message fault probabilities (0..1) and their bounds.

    Attributes:
        corrupt: bytes damaged after sealing (truncated, bad version, codec or key id).
        unknown_key: sealed under a key id that the consumers' key ring lacks.
        tamper: one ciphertext bit flipped (AES-GCM authentication fails).
        malformed: a sealed payload that is not valid JSON/MessagePack or breaks the schema.
        duplicate: a clean message is sent once more within ``duplicate_delay_s``.
        reorder: a message is held back up to ``reorder_bound_s`` and so arrives after later ones.
        gap: the device falls silent for about ``gap_s`` seconds (no messages, ``seq`` does not advance).
        counter_reset: a counter register of the device goes back to 0.
    """

    corrupt: Probability = 0.0
    unknown_key: Probability = 0.0
    tamper: Probability = 0.0
    malformed: Probability = 0.0
    duplicate: Probability = 0.0
    reorder: Probability = 0.0
    gap: Probability = 0.0
    counter_reset: Probability = 0.0
    reorder_bound_s: Annotated[float, Meta(ge=0.0, le=3600.0)] = 30.0
    duplicate_delay_s: Annotated[float, Meta(ge=0.0, le=3600.0)] = 5.0
    gap_s: Annotated[float, Meta(gt=0.0, le=86_400.0)] = 60.0

    def __post_init__(self) -> None:
        total = sum(getattr(self, name) for name in WIRE_FAULTS)
        if total > 1.0 + 1e-9:
            raise ValueError(f"corrupt + unknown_key + tamper + malformed must be at most 1, got {total:g}")


class SimulationConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A simulation run.

    Attributes:
        devices: How many devices (a quarter water meters, a quarter temperature sensors, the rest electricity).
        interval_s: Seconds between two measurements of one device.
        duration_s: Simulated seconds; measurements fall in ``[start_ms, start_ms + duration_s)``.
        start_ms: Simulated start, epoch milliseconds.
        seed: Makes readings, faults and nonces reproducible; None draws nonces from ``os.urandom``.
        aggregate: 0 writes one envelope per Kinesis record; N packs up to N envelopes per KPL aggregate.
        msgpack_share: Share of devices whose gateway speaks MessagePack (the others JSON).
        key_ids: Key ids to seal with (devices take them in turn); empty means every key of the ring.
        unknown_key_id: The key id used by the ``unknown_key`` fault; must not be in the ring.
        faults: Fault probabilities.
        shard_ranges: Hash-key ranges of the open shards, for shard-true aggregation (see the field).
        anomalies: A few devices break each alarm rule type of ``fleet_catalog`` once, at known times
            (``simulate.anomalies``); those devices take no faults.
    """

    devices: Annotated[int, Meta(ge=1, le=1_000_000)] = 10
    interval_s: Annotated[float, Meta(ge=0.001, le=86_400.0)] = 1.0
    duration_s: Annotated[float, Meta(gt=0.0, le=366 * 86_400.0)] = 60.0
    start_ms: Annotated[int, Meta(gt=0, lt=2**53)] = DEFAULT_START_MS
    seed: int | None = 0
    aggregate: Annotated[int, Meta(ge=0, le=10_000)] = 0
    # Hash-key ranges (inclusive) of the stream's open shards. Like the KPL, an aggregate packs only user
    # records bound for one shard, so a device's messages always land on the shard its partition key maps
    # to. Empty: an aggregate packs records of one partition key only.
    shard_ranges: tuple[tuple[int, int], ...] = ()
    msgpack_share: Probability = 0.5
    key_ids: tuple[str, ...] = ()
    unknown_key_id: str = "retired-2019"
    faults: FaultRates = FaultRates()
    anomalies: bool = False


def parse_faults(text: str) -> FaultRates:
    """Parse ``corrupt=0.01,duplicate=0.05,reorder_bound_s=20`` into ``FaultRates``.

    Raises:
        ConfigError: an unknown name, a value that is not a number, or one out of range.
    """
    known = msgspec.structs.fields(FaultRates)
    names = [f.name for f in known]
    raw: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in names:
            raise ConfigError(
                "--faults",
                f"unknown or incomplete item {item!r}",
                f"write NAME=VALUE pairs with NAME one of {', '.join(names)}",
            )
        try:
            raw[name] = float(value)
        except ValueError:
            raise ConfigError(
                "--faults", f"{name}={value!r} is not a number", "give a number such as 0.01"
            ) from None
    try:
        return msgspec.convert(raw, FaultRates)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ConfigError(
            "--faults", str(exc), "give probabilities between 0 and 1 (wire faults summing to <= 1)"
        ) from None
