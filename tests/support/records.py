"""Building real encrypted Kinesis records for tests (through the production encoder)."""

from __future__ import annotations

import itertools

from wenu_stream.model import KinesisRecord
from wenu_stream.records.crypto import KeyRing
from wenu_stream.records.encoding import aggregate, encode_payload, seal
from wenu_stream.records.payload import Message, Reading

KEYS = {"k1": bytes(range(32)), "k2": bytes(range(32, 64))}
RING = KeyRing.from_keys(KEYS)
_nonces = itertools.count(1)


def message(device: str, seq: int, t: int = 1_764_300_000_000, v: float = 1.5) -> Message:
    return Message(
        device=device, seq=seq, sent_at=t + 100, readings=(Reading(ch="active_power_w", t=t, v=v),)
    )


def envelope(msg: Message, key_id: str = "k1", codec: int = 1) -> bytes:
    nonce = next(_nonces).to_bytes(12, "big")
    return seal(encode_payload(msg, codec), key_id=key_id, key=KEYS[key_id], codec=codec, nonce=nonce)


def record(
    seq: int, data: bytes, partition_key: str = "pk", arrival: float = 1_764_300_001.0
) -> KinesisRecord:
    return KinesisRecord(
        sequence_number=str(seq),
        data=data,
        partition_key=partition_key,
        approximate_arrival_timestamp=arrival,
    )


def aggregated(seq: int, msgs: list[Message]) -> KinesisRecord:
    return record(seq, aggregate([(m.device, envelope(m)) for m in msgs]), msgs[0].device)
