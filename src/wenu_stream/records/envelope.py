"""The v1 envelope header: length, version, codec and key-id checks, in the spec's order.

Layout (``docs/wire-format.md``)::

    0      version 0x01
    1      codec   0x01 JSON | 0x02 MessagePack
    2      key id length L, 1..64
    3      key id, L ASCII bytes of [A-Za-z0-9._:-]
    3+L    12-byte AES-GCM nonce
    15+L   ciphertext followed by its 16-byte tag

The AAD is the header, bytes ``0 .. 3+L``.
"""

from __future__ import annotations

import string
from typing import Final

import msgspec

from wenu_stream.records.payload import CODECS, Fault
from wenu_stream.records.rejections import Reason

VERSION: Final = 0x01
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
MAX_KEY_ID: Final = 64
KEY_ID_CHARS: Final = (string.ascii_letters + string.digits + "._:-").encode("ascii")


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed envelope header; ``header`` is the AAD, ``sealed`` is the ciphertext and tag."""

    codec: int
    key_id: str
    header: bytes
    nonce: bytes
    sealed: bytes


OVERHEAD: Final = NONCE_SIZE + TAG_SIZE


def is_valid_key_id(key_id: bytes) -> bool:
    """Tell whether ``key_id`` is 1..64 bytes of ``[A-Za-z0-9._:-]``."""
    return 0 < len(key_id) <= MAX_KEY_ID and not key_id.translate(None, KEY_ID_CHARS)


def header(codec: int, key_id: str) -> bytes:
    """The v1 header (and AAD) for ``codec`` and a valid ``key_id``."""
    raw_id = key_id.encode("ascii")
    return bytes((VERSION, codec, len(raw_id))) + raw_id


def parse_envelope(data: bytes) -> Envelope | Fault:
    """Split an envelope into its parts, or say why it cannot be one.

    Checks, in order, each as soon as it can be made (a field is never read past the end):
    1. at least 3 bytes, else ``truncated``;
    2. version byte, else ``unsupported_version``;
    3. codec byte, else ``unsupported_codec``;
    4. key id length 1..64, else ``bad_key_id``;
    5. all L key-id bytes present, else ``truncated``;
    6. key-id characters, else ``bad_key_id``;
    7. nonce and tag present, else ``truncated``.
    """
    size = len(data)
    if size < 3:
        return Fault(Reason.TRUNCATED, f"{size} bytes, shorter than the 3-byte header")
    if data[0] != VERSION:
        return Fault(Reason.UNSUPPORTED_VERSION, f"version byte 0x{data[0]:02x}, expected 0x01")
    codec = data[1]
    if codec not in CODECS:
        return Fault(Reason.UNSUPPORTED_CODEC, f"codec byte 0x{codec:02x}, expected 0x01 or 0x02")
    end = 3 + data[2]
    if not 3 < end <= 3 + MAX_KEY_ID:
        return Fault(Reason.BAD_KEY_ID, f"key id length {data[2]}, expected 1..{MAX_KEY_ID}")
    if size < end:
        return Fault(Reason.TRUNCATED, f"{size} bytes, shorter than the {end}-byte header")
    raw_id = data[3:end]
    if raw_id.translate(None, KEY_ID_CHARS):
        return Fault(Reason.BAD_KEY_ID, "key id has characters outside [A-Za-z0-9._:-]")
    if size < end + NONCE_SIZE + TAG_SIZE:
        return Fault(Reason.TRUNCATED, f"{size} bytes, shorter than header + nonce + tag ({end + 28})")
    return Envelope(
        codec=codec,
        key_id=raw_id.decode("ascii"),
        header=data[:end],
        nonce=data[end : end + NONCE_SIZE],
        sealed=data[end + NONCE_SIZE :],
    )
