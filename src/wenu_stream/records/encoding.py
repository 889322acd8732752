"""The producer side of the wire format: payloads, v1 envelopes and KPL aggregates.

Used by ``wenu-stream simulate``, the tests and the benchmarks. It is the exact
inverse of ``decoding``: whatever it writes, ``decode_record`` accepts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wenu_stream.records.envelope import NONCE_SIZE, header, is_valid_key_id
from wenu_stream.records.kpl import MAGIC
from wenu_stream.records.payload import CODECS, JSON, MSGPACK, Message

KEY_SIZE = 32
_JSON_ENCODER = msgspec.json.Encoder()
_MSGPACK_ENCODER = msgspec.msgpack.Encoder()


def encode_payload(message: Message, codec: int) -> bytes:
    """Serialise ``message`` as JSON (codec ``0x01``) or MessagePack (codec ``0x02``).

    Raises:
        ValueError: ``codec`` is neither.
    """
    if codec == JSON:
        return _JSON_ENCODER.encode(message)
    if codec == MSGPACK:
        return _MSGPACK_ENCODER.encode(message)
    raise ValueError(f"codec must be 0x01 (JSON) or 0x02 (MessagePack), got {codec!r}")


def seal(plaintext: bytes, *, key_id: str, key: bytes, codec: int, nonce: bytes) -> bytes:
    """Encrypt ``plaintext`` into a v1 envelope (header, nonce, ciphertext and tag; AAD = header).

    Args:
        plaintext: The encoded payload (see ``encode_payload``).
        key_id: 1..64 characters of ``[A-Za-z0-9._:-]``.
        key: The 32-byte AES-256 key of ``key_id``.
        codec: The codec byte written in the header.
        nonce: 12 bytes, never reused with the same key.

    Raises:
        ValueError: An argument that no valid envelope can carry (the key itself is never shown).
    """
    raw_id = key_id.encode("ascii", "replace")
    if not is_valid_key_id(raw_id):
        raise ValueError(f"key id {key_id!r} must be 1..64 characters of [A-Za-z0-9._:-]")
    if codec not in CODECS:
        raise ValueError(f"codec must be 0x01 (JSON) or 0x02 (MessagePack), got {codec!r}")
    if len(key) != KEY_SIZE:
        raise ValueError(f"key of {key_id!r} must be {KEY_SIZE} bytes, got {len(key)}")
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes, got {len(nonce)}")
    aad = header(codec, key_id)
    return aad + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def aggregate(records: Sequence[tuple[str, bytes]]) -> bytes:
    """Pack ``(partition key, user record)`` pairs into one KPL aggregated record.

    The partition-key table holds each distinct key once, in order of first use.

    Raises:
        ValueError: ``records`` is empty (the KPL never writes an empty aggregate).
    """
    if not records:
        raise ValueError("an aggregated record needs at least one user record")
    table: dict[str, int] = {}
    body = bytearray()
    for key, _ in records:
        if key not in table:
            table[key] = len(table)
            _put_bytes(body, 1, key.encode("utf-8"))
    for key, data in records:
        inner = bytearray()
        _put_varint(inner, 1 << 3)
        _put_varint(inner, table[key])
        _put_bytes(inner, 3, data)
        _put_bytes(body, 3, bytes(inner))
    return MAGIC + bytes(body) + hashlib.md5(body, usedforsecurity=False).digest()


def _put_bytes(out: bytearray, field: int, value: bytes) -> None:
    _put_varint(out, field << 3 | 2)
    _put_varint(out, len(value))
    out += value


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
