"""The decrypted payload of an envelope: ``Message`` and ``Reading``, and how to decode them.

The Structs carry the payload table of ``spec/wire-format.md`` as ``Meta``
constraints, so one msgspec pass both parses and validates. They are tolerant
of unknown fields (no ``forbid_unknown_fields``): the spec says fields not
listed are ignored, at both levels.

Classifying a failure follows the spec's order, ``malformed_payload`` before
``schema_violation``. msgspec stops at the first problem it meets, so a type
error early in a document that is malformed further on is reported as a
validation error; only on that (rare, rejecting) path is the document decoded
again without a schema to tell the two apart.
"""

from __future__ import annotations

import sys
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from wenu_stream.records.rejections import Reason

JSON: Final = 0x01
MSGPACK: Final = 0x02
CODECS: Final = frozenset({JSON, MSGPACK})

_MAX_MS = 2**53
_FINITE = Meta(ge=-sys.float_info.max, le=sys.float_info.max)  # NaN and +-inf fail both bounds

# ``\Z`` and not ``$``: ``$`` also matches before a trailing newline.
Channel = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+\Z")]
DeviceId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+\Z")]
EpochMs = Annotated[int, Meta(gt=0, lt=_MAX_MS)]
Seq = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Value = Annotated[float, _FINITE]


class Reading(msgspec.Struct, frozen=True):
    """One measured value of one channel of a device."""

    ch: Channel
    t: EpochMs
    v: Value


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One message of a device: ``(device, seq)`` identifies it. ``readings`` is a tuple (1..1000)."""

    device: DeviceId
    seq: Seq
    sent_at: EpochMs
    readings: Annotated[tuple[Reading, ...], Meta(min_length=1, max_length=1000)]


class Fault(msgspec.Struct, frozen=True):
    """Why one stage of decoding refused a record: a spec reason code and a short detail."""

    reason: Reason
    detail: str


DECODERS: Final = {
    JSON: msgspec.json.Decoder(Message).decode,
    MSGPACK: msgspec.msgpack.Decoder(Message).decode,
}
"""The raw decoders by codec: parse and validate, raising one of ``NOT_DECODABLE``. A JSON payload that is
not ASCII must also pass a UTF-8 check; ``decode_payload`` does both and names the reason of a failure."""
# Schema-less decoders that only answer "is this well-formed?". The float hook keeps a JSON
# number such as 1e400 (valid JSON, not finite) from failing here: that is a schema matter.
_WELL_FORMED: Final = {
    JSON: msgspec.json.Decoder(float_hook=float).decode,
    MSGPACK: msgspec.msgpack.Decoder().decode,
}
NOT_DECODABLE: Final = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def decode_payload(plaintext: bytes, codec: int) -> Message | Fault:
    """Decode and validate a plaintext written with ``codec`` (``JSON`` or ``MSGPACK``).

    Args:
        plaintext: The decrypted payload.
        codec: The envelope's codec byte, already checked to be in ``CODECS``.

    Returns:
        The ``Message``, or a ``Fault`` with ``malformed_payload`` or ``schema_violation``.
    """
    if codec == JSON and not plaintext.isascii() and not _is_utf8(plaintext):
        return Fault(Reason.MALFORMED_PAYLOAD, "JSON payload is not valid UTF-8")
    try:
        return DECODERS[codec](plaintext)
    except NOT_DECODABLE as exc:
        return _classify(plaintext, codec, exc)


def _is_utf8(data: bytes) -> bool:
    # msgspec skips unknown fields without checking their text, so check the whole document.
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _classify(plaintext: bytes, codec: int, exc: Exception) -> Fault:
    name = "JSON" if codec == JSON else "MessagePack"
    if isinstance(exc, msgspec.ValidationError):
        try:
            _WELL_FORMED[codec](plaintext)
        except NOT_DECODABLE as syntax:
            return Fault(Reason.MALFORMED_PAYLOAD, f"{name} payload is malformed: {_short(syntax)}")
        return Fault(Reason.SCHEMA_VIOLATION, _schema_detail(exc))
    if isinstance(exc, RecursionError):
        return Fault(Reason.MALFORMED_PAYLOAD, f"{name} payload is nested too deeply")
    return Fault(Reason.MALFORMED_PAYLOAD, f"{name} payload is malformed: {_short(exc)}")


def _schema_detail(exc: msgspec.ValidationError) -> str:
    text = _short(exc)
    if text.startswith(("Expected `float` >=", "Expected `float` <=", "Number out of range")):
        return "non-finite number" + text[text.find(" - at ") :] if " - at " in text else "non-finite number"
    return text


def _short(exc: BaseException) -> str:
    return str(exc)[:200]
