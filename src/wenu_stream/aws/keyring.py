"""Loading the key ring (edge): a local JSON file of base64 keys, or a KMS-wrapped file.

Plain file: ``{"key-id": "<base64 32-byte key>", ...}``, or a whole test-vector
document with such a ``"keyring"`` member.

KMS-wrapped file::

    {"format": "wenu-keyring-kms-v1", "kms_key_id": "...", "encryption_context": {...},
     "keys": {"key-id": "<base64 CiphertextBlob>", ...}}

Each data key is unwrapped once per load with KMS ``Decrypt`` (a sync boto3
client, run off the event loop). Rotation adds a key id; old ids keep working.
Errors name the file, the key id and the fix, never the key.

A worker reads its ring again every ``keyring.reload_s`` and on SIGHUP
(:class:`ReloadingKeyRing`), so a newly provisioned device key is used within
a minute instead of its records being dead-lettered until the next deploy. A
ring that fails to load keeps the previous one (and says so in the log).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from wenu_stream.aws.common import error_code
from wenu_stream.errors import KeyRingError
from wenu_stream.log import get_logger
from wenu_stream.records.crypto import KEY_SIZE, KeyRing

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient
    from mypy_boto3_kms.type_defs import DecryptRequestTypeDef

KMS_FORMAT = "wenu-keyring-kms-v1"


def load_keyring_file(path: str | Path) -> KeyRing:
    """Load a plain key-ring file.

    Raises:
        KeyRingError: the file is missing or unreadable, or a key id or key is invalid.
    """
    document = _read_json(path)
    keys = document.get("keyring", document)
    if not isinstance(keys, dict) or ("format" in keys and keys.get("format") == KMS_FORMAT):
        raise KeyRingError(
            f"{path}: not a plain key ring. Fix: give a JSON object of key id -> base64 key"
            " (a KMS-wrapped file goes to --kms-keyring)"
        )
    return _ring(path, {key_id: _b64(path, key_id, value) for key_id, value in keys.items()})


def load_kms_keyring(path: str | Path, kms_client: KMSClient) -> KeyRing:
    """Load a KMS-wrapped key-ring file, unwrapping each data key with KMS ``Decrypt``.

    Args:
        path: The wrapped key-ring file.
        kms_client: A boto3 KMS client.

    Raises:
        KeyRingError: a bad file, a KMS refusal, or an unwrapped key that is not 32 bytes.
    """
    document = _read_json(path)
    if document.get("format") != KMS_FORMAT or not isinstance(document.get("keys"), dict):
        raise KeyRingError(f"{path}: not a {KMS_FORMAT} file. Fix: write it with wrap_keyring()")
    context = document.get("encryption_context") or {}
    if not isinstance(context, dict) or not all(isinstance(v, str) for v in context.values()):
        raise KeyRingError(
            f"{path}: encryption_context must be a JSON object of strings. Fix: write it with wrap_keyring()"
        )
    kms_key_id = document.get("kms_key_id")
    if kms_key_id is not None and not isinstance(kms_key_id, str):
        raise KeyRingError(f"{path}: kms_key_id must be a string (a KMS key id, ARN or alias)")
    keys = {}
    for key_id, blob in document["keys"].items():
        keys[key_id] = _unwrap(path, key_id, _b64(path, key_id, blob), kms_client, kms_key_id, context)
    return _ring(path, keys)


def wrap_keyring(
    plain: Mapping[str, bytes], kms_client: KMSClient, kms_key_id: str, context: Mapping[str, str]
) -> dict[str, Any]:
    """Wrap each data key with KMS ``Encrypt``; return the document to write as a KMS-wrapped file."""
    keys = {}
    for key_id, key in plain.items():
        if len(key) != KEY_SIZE:
            raise KeyRingError(f"key {key_id!r} must be {KEY_SIZE} bytes, got {len(key)}")
        blob = kms_client.encrypt(KeyId=kms_key_id, Plaintext=key, EncryptionContext=dict(context))
        keys[key_id] = base64.b64encode(blob["CiphertextBlob"]).decode("ascii")
    return {"format": KMS_FORMAT, "kms_key_id": kms_key_id, "encryption_context": dict(context), "keys": keys}


def _read_json(path: str | Path) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeyRingError(
            f"{path}: key-ring file not found. Fix: give the path of an existing file"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise KeyRingError(
            f"{path}: cannot read the key ring ({type(exc).__name__}). Fix: give a JSON file"
        ) from None
    if not isinstance(document, dict):
        raise KeyRingError(f"{path}: the key ring must be a JSON object of key id -> base64 key")
    return document


def _b64(path: str | Path, key_id: str, value: object) -> bytes:
    try:
        return base64.b64decode(value, validate=True) if isinstance(value, str) else _bad_b64(path, key_id)
    except (binascii.Error, ValueError):
        return _bad_b64(path, key_id)


def _bad_b64(path: str | Path, key_id: str) -> bytes:
    raise KeyRingError(
        f"{path}: key {key_id!r} is not a base64 string. Fix: write the key as standard base64"
    )


def _unwrap(
    path: str | Path,
    key_id: str,
    blob: bytes,
    kms_client: KMSClient,
    kms_key_id: str | None,
    context: Mapping[str, str],
) -> bytes:
    request: DecryptRequestTypeDef = {"CiphertextBlob": blob, "EncryptionContext": dict(context)}
    if kms_key_id:
        request["KeyId"] = kms_key_id
    try:
        return bytes(kms_client.decrypt(**request)["Plaintext"])
    except (BotoCoreError, ClientError) as exc:
        code = error_code(exc) or type(exc).__name__
        raise KeyRingError(
            f"{path}: KMS refused to unwrap key {key_id!r} ({code}). Fix: check kms_key_id, the encryption"
            " context and the caller's kms:Decrypt permission"
        ) from None


def _ring(path: str | Path, keys: dict[str, bytes]) -> KeyRing:
    if not keys:
        raise KeyRingError(f"{path}: the key ring is empty. Fix: add at least one key id")
    try:
        return KeyRing.from_keys(keys)
    except KeyRingError as exc:
        raise KeyRingError(f"{path}: {exc}. Fix: use 32-byte keys and key ids of [A-Za-z0-9._:-]") from None


class ReloadingKeyRing:
    """The current key ring: loaded again every ``every_s`` (0: never) and when :meth:`request` was called."""

    def __init__(
        self,
        load: Callable[[], KeyRing],
        ring: KeyRing,
        *,
        every_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self._ring, self._every_s, self._monotonic = load, ring, every_s, monotonic
        self._loaded_at = monotonic()
        self._requested = False
        self._lock: asyncio.Lock | None = None
        self._log = get_logger("wenu.keyring")

    def request(self) -> None:
        """Load again at the next use (SIGHUP). Safe from a signal handler."""
        self._requested = True

    async def current(self) -> KeyRing:
        """The ring, loaded again first if it is due (one load at a time; a failed load keeps the old ring)."""
        if not self._due():
            return self._ring
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._due():
                self._requested, self._loaded_at = False, self._monotonic()
                await self._reload()
        return self._ring

    def _due(self) -> bool:
        return self._requested or (self._every_s > 0 and self._monotonic() - self._loaded_at >= self._every_s)

    async def _reload(self) -> None:
        try:
            ring = await asyncio.to_thread(self._load)
        except KeyRingError as exc:
            self._log.warning(
                "keyring_reload_failed", error=str(exc), effect="the previous key ring stays in use"
            )
            return
        added = sorted(set(ring.key_ids) - set(self._ring.key_ids))
        removed = sorted(set(self._ring.key_ids) - set(ring.key_ids))
        if added or removed:
            self._log.info("keyring_reloaded", added=added, removed=removed)
        self._ring = ring
