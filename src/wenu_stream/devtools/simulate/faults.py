"""Fault injection on sealed envelopes, and the nonces and sealing they need. Pure but for ``os.urandom``.

Each function damages a record in one way and says which reason code a consumer
must give it (``docs/wire-format.md``), so a test knows the expected outcome of
every record it puts.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from enum import StrEnum
from typing import Final

import msgspec

from wenu_stream.records.encoding import encode_payload, seal
from wenu_stream.records.envelope import NONCE_SIZE, TAG_SIZE
from wenu_stream.records.payload import JSON, Message
from wenu_stream.records.rejections import Reason

ACCEPTED: Final = "accepted"
DUPLICATE: Final = "duplicate"


class Fault(StrEnum):
    """What was done to a user record on purpose."""

    CORRUPT = "corrupt"
    UNKNOWN_KEY = "unknown_key"
    TAMPER = "tamper"
    MALFORMED = "malformed"
    DUPLICATE = "duplicate"


class NonceSource:
    """12-byte AES-GCM nonces, each used once in a run.

    With a seed: a 4-byte prefix drawn from the seed and an 8-byte counter (the
    deterministic construction of NIST SP 800-38D), so a run is reproducible and
    never repeats a nonce under any key. Two runs with the same seed and key
    repeat nonces: seeded runs are for tests and demos only. Without a seed:
    ``os.urandom``.
    """

    __slots__ = ("_count", "_prefix")

    def __init__(self, seed: int | None) -> None:
        self._prefix = None if seed is None else random.Random(f"{seed}:nonces").randbytes(4)
        self._count = 0

    def next(self) -> bytes:
        """Return a fresh nonce."""
        if self._prefix is None:
            return os.urandom(NONCE_SIZE)
        self._count += 1
        return self._prefix + self._count.to_bytes(NONCE_SIZE - 4, "big")


class Sealer:
    """Seals messages under the keys of a ring with nonces from one ``NonceSource``."""

    __slots__ = ("_keys", "_nonces")

    def __init__(self, keys: Mapping[str, bytes], nonces: NonceSource) -> None:
        self._keys = dict(keys)
        self._nonces = nonces

    def seal(self, message: Message, codec: int, key_id: str) -> bytes:
        """Encode ``message`` with ``codec`` and seal it under ``key_id``."""
        return self.seal_plaintext(encode_payload(message, codec), codec, key_id)

    def seal_plaintext(self, plaintext: bytes, codec: int, key_id: str) -> bytes:
        """Seal an already encoded (possibly deliberately broken) payload under ``key_id``."""
        return seal(plaintext, key_id=key_id, key=self._keys[key_id], codec=codec, nonce=self._nonces.next())


def header_size(envelope: bytes) -> int:
    """Length of the envelope's header (version, codec, key id length, key id)."""
    return 3 + envelope[2]


def corrupt(envelope: bytes, rng: random.Random) -> tuple[bytes, Reason]:
    """Damage the header or cut the record short; return the damaged bytes and the reason due."""
    variant = rng.randrange(5)
    head = header_size(envelope)
    if variant == 0:  # cut anywhere before the nonce and tag are complete, keeping at least 1 byte
        return envelope[: rng.randrange(1, head + NONCE_SIZE + TAG_SIZE)], Reason.TRUNCATED
    if variant == 1:
        return _replace(envelope, 0, rng.choice((0x00, 0x02, 0x7F, 0xFF))), Reason.UNSUPPORTED_VERSION
    if variant == 2:
        return _replace(envelope, 1, rng.choice((0x00, 0x03, 0x10, 0xFF))), Reason.UNSUPPORTED_CODEC
    if variant == 3:
        return _replace(envelope, 2, rng.choice((0, 65, 200))), Reason.BAD_KEY_ID
    return _replace(envelope, rng.randrange(3, head), rng.choice(b" !/@\x00\xc3")), Reason.BAD_KEY_ID


def tamper(envelope: bytes, rng: random.Random) -> bytes:
    """Flip one bit of the nonce, ciphertext or tag: AES-GCM authentication must fail."""
    index = rng.randrange(header_size(envelope), len(envelope))
    return _replace(envelope, index, envelope[index] ^ (1 << rng.randrange(8)))


def malformed_plaintext(message: Message, codec: int, rng: random.Random) -> tuple[bytes, Reason]:
    """A payload that decrypts but does not decode: cut short, or valid but against the schema."""
    if rng.random() < 0.5:
        whole = encode_payload(message, codec)
        return whole[: rng.randrange(1, len(whole))], Reason.MALFORMED_PAYLOAD
    broken = {
        "device": message.device,
        "seq": message.seq,
        "sent_at": message.sent_at,
        "readings": rng.choice(([], "none", [{"ch": "x", "t": 0, "v": 1.0}])),
    }
    encoded = msgspec.json.encode(broken) if codec == JSON else msgspec.msgpack.encode(broken)
    return encoded, Reason.SCHEMA_VIOLATION


def _replace(data: bytes, index: int, value: int) -> bytes:
    return data[:index] + bytes((value,)) + data[index + 1 :]
