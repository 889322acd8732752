"""The key ring and envelope decryption (AES-256-GCM). Pure: keys come in as values.

Key material never appears in a repr, a log line or an error message: the ring
keeps only ``AESGCM`` objects, and errors name key ids, never keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wenu_stream.errors import KeyRingError
from wenu_stream.records.envelope import Envelope, header, is_valid_key_id
from wenu_stream.records.payload import CODECS, Fault
from wenu_stream.records.rejections import Reason

KEY_SIZE: Final = 32


class KeyRing:
    """Immutable map of key id -> AES-GCM cipher, each built once. Rotation adds a key id."""

    __slots__ = ("_ciphers", "lookup")
    _ciphers: Mapping[str, AESGCM]
    lookup: Callable[[bytes], tuple[str, AESGCM] | None]
    """``lookup(header)``: (key id, cipher) for a valid envelope header (the AAD: version, codec,
    length, key id) of a key in the ring, else None. One dictionary probe checks version, codec,
    key id and ring membership at once: the decoder's fast path."""

    def __init__(self, ciphers: Mapping[str, AESGCM]) -> None:
        """Wrap ciphers already built; prefer ``KeyRing.from_keys``."""
        headers = {
            header(codec, key_id): (key_id, cipher) for key_id, cipher in ciphers.items() for codec in CODECS
        }
        object.__setattr__(self, "_ciphers", MappingProxyType(dict(ciphers)))
        object.__setattr__(self, "lookup", headers.get)  # a bound get: read-only, and one C call

    @classmethod
    def from_keys(cls, keys: Mapping[str, bytes]) -> KeyRing:
        """Build a ring from raw 32-byte keys by key id.

        Raises:
            KeyRingError: a key id outside the spec's alphabet or length, or a key that is not 32 bytes.
        """
        return cls({key_id: _cipher(key_id, key) for key_id, key in keys.items()})

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The key ids of the ring, sorted."""
        return tuple(sorted(self._ciphers))

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._ciphers

    def __len__(self) -> int:
        return len(self._ciphers)

    def __iter__(self) -> Iterator[str]:
        return iter(self.key_ids)

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={list(self.key_ids)!r})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("KeyRing is immutable; use with_key() to rotate")

    def cipher(self, key_id: str) -> AESGCM | None:
        """The cipher of ``key_id``, or None when the ring lacks it."""
        return self._ciphers.get(key_id)

    def with_key(self, key_id: str, key: bytes) -> KeyRing:
        """Return a new ring that also holds ``key_id`` (rotation); this ring is unchanged.

        Raises:
            KeyRingError: ``key_id`` is already in the ring, or the id or key is invalid.
        """
        if key_id in self._ciphers:
            raise KeyRingError(f"key id {key_id!r} is already in the key ring; rotate by adding a new key id")
        return KeyRing({**self._ciphers, key_id: _cipher(key_id, key)})

    def union(self, other: KeyRing) -> KeyRing:
        """Return a ring holding the keys of both rings.

        Raises:
            KeyRingError: a key id is in both rings.
        """
        shared = sorted(set(self._ciphers) & set(other._ciphers))
        if shared:
            raise KeyRingError(f"key ids {shared} are in both key rings; keep each key id in one ring")
        return KeyRing({**self._ciphers, **other._ciphers})


def _cipher(key_id: str, key: bytes) -> AESGCM:
    if not isinstance(key_id, str) or not is_valid_key_id(key_id.encode("ascii", "replace")):
        raise KeyRingError(f"key id {key_id!r} must be 1..64 characters of [A-Za-z0-9._:-]")
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
        size = len(key) if isinstance(key, bytes | bytearray) else type(key).__name__
        raise KeyRingError(f"key {key_id!r} must be {KEY_SIZE} bytes (AES-256), got {size}")
    return AESGCM(bytes(key))


def open_envelope(envelope: Envelope, keyring: KeyRing) -> bytes | Fault:
    """Decrypt and authenticate an envelope's payload (the AAD is its header).

    Returns:
        The plaintext, or a ``Fault``: ``unknown_key`` or ``auth_failed``.
    """
    cipher = keyring.cipher(envelope.key_id)
    if cipher is None:
        return Fault(Reason.UNKNOWN_KEY, f"key id {envelope.key_id!r} is not in the key ring")
    try:
        return cipher.decrypt(envelope.nonce, envelope.sealed, envelope.header)
    except InvalidTag:
        return Fault(Reason.AUTH_FAILED, f"AES-GCM authentication failed with key {envelope.key_id!r}")
