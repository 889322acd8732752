"""Read a key-ring file into raw keys, which sealing needs (``crypto.KeyRing`` keeps only ciphers).

The file is a JSON object ``{"key-id": "<base64 of 32 bytes>", ...}``; the test
vectors' document, whose ``keyring`` member has that shape, is accepted too.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

from wenu_stream.errors import ConfigError, KeyRingError
from wenu_stream.records.crypto import KeyRing


def read_key_file(path: str, flag: str = "--keyring") -> dict[str, bytes]:
    """Return the raw keys by key id of the key-ring file at ``path``.

    Raises:
        ConfigError: the file is missing, not JSON, not the expected shape, or holds a bad key.
    """
    fix = 'give a JSON file {"key-id": "<base64 of 32 bytes>"}'
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(flag, f"cannot read key ring {path!r}: {exc}", fix) from None
    if isinstance(doc, dict) and isinstance(doc.get("keyring"), dict):
        doc = doc["keyring"]
    if not isinstance(doc, dict) or not doc or not all(isinstance(v, str) for v in doc.values()):
        raise ConfigError(flag, f"key ring {path!r} is not an object of base64 strings", fix)
    try:
        keys = {key_id: base64.b64decode(value, validate=True) for key_id, value in doc.items()}
        KeyRing.from_keys(keys)  # the same checks as the consumers' ring
    except (binascii.Error, KeyRingError) as exc:
        raise ConfigError(flag, f"key ring {path!r}: {exc}", fix) from None
    return keys
