"""Reason codes of rejected records, verbatim from docs/wire-format.md, in the spec's order."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Reason(StrEnum):
    """Why a user record was rejected. Checked in this order."""

    TRUNCATED = "truncated"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNSUPPORTED_CODEC = "unsupported_codec"
    BAD_KEY_ID = "bad_key_id"
    UNKNOWN_KEY = "unknown_key"
    AUTH_FAILED = "auth_failed"
    MALFORMED_PAYLOAD = "malformed_payload"
    SCHEMA_VIOLATION = "schema_violation"


class Rejected(msgspec.Struct, frozen=True, kw_only=True):
    """A user record that cannot be accepted, with the bytes that came in."""

    reason: Reason
    detail: str
    raw: bytes
    partition_key: str = ""
    sub_index: int = 0
