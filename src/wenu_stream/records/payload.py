"""The decrypted payload of an envelope: ``Message`` and ``Reading``, and how to decode them.

The Structs carry the payload table of ``docs/wire-format.md`` as ``Meta``
constraints, so one msgspec pass both parses and validates, all but the
alphabets of ``device`` and ``ch``: a msgspec ``pattern`` calls Python's ``re``
for every string, about 4 us per message, while ``names_valid`` checks the same
alphabets for a fraction of that. ``StrictMessage`` carries the whole table,
patterns included; the decoders fall back to it for anything the fast route does
not accept, so the decisions, reason codes and details are exactly its own
(``decode_payload``). They are tolerant of unknown fields (no
``forbid_unknown_fields``): the spec says fields not listed are ignored, at both
levels.

Classifying a failure follows the spec's order, ``malformed_payload`` before
``schema_violation``. msgspec stops at the first problem it meets, so a type
error early in a document that is malformed further on is reported as a
validation error; only on that (rare, rejecting) path is the document decoded
again without a schema to tell the two apart.
"""

from __future__ import annotations

import string
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
CHANNEL_PATTERN: Final = r"^[a-z0-9_]+\Z"
DEVICE_PATTERN: Final = r"^[A-Za-z0-9_.:-]+\Z"
_CHANNEL_CHARS: Final = string.ascii_lowercase + string.digits + "_"
_DEVICE_CHARS: Final = string.ascii_letters + string.digits + "_.:-"
Channel = Annotated[str, Meta(min_length=1, max_length=64)]  # + names_valid: CHANNEL_PATTERN
DeviceId = Annotated[str, Meta(min_length=1, max_length=64)]  # + names_valid: DEVICE_PATTERN
StrictChannel = Annotated[str, Meta(min_length=1, max_length=64, pattern=CHANNEL_PATTERN)]
StrictDeviceId = Annotated[str, Meta(min_length=1, max_length=64, pattern=DEVICE_PATTERN)]
EpochMs = Annotated[int, Meta(gt=0, lt=_MAX_MS)]
Seq = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Value = Annotated[float, _FINITE]


class Reading(msgspec.Struct, frozen=True, gc=False):
    """One measured value of one channel of a device.

    ``gc=False`` here and on ``Message``: frozen, holding only strings, numbers and a tuple of
    readings, they can never be part of a reference cycle, so the collector need not track one
    or more objects per message.
    """

    ch: Channel
    t: EpochMs
    v: Value


class Message(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One message of a device: ``(device, seq)`` identifies it. ``readings`` is a tuple (1..1000).

    Decoding into it checks the payload table but for the alphabets of ``device`` and ``ch``:
    ``names_valid`` does that (``decode_payload`` and the record decoder always call it).
    """

    device: DeviceId
    seq: Seq
    sent_at: EpochMs
    readings: Annotated[tuple[Reading, ...], Meta(min_length=1, max_length=1000)]


class StrictReading(msgspec.Struct, frozen=True, gc=False):
    """``Reading`` with the whole payload table, the channel alphabet included (the reference decoding)."""

    ch: StrictChannel
    t: EpochMs
    v: Value


class StrictMessage(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """``Message`` with the whole payload table as msgspec constraints, patterns included.

    Its decoders (``STRICT_DECODERS``) are the reference: what they accept is accepted, and a
    failure's reason and detail are theirs. The hot path reaches the same decisions more cheaply.
    """

    device: StrictDeviceId
    seq: Seq
    sent_at: EpochMs
    readings: Annotated[tuple[StrictReading, ...], Meta(min_length=1, max_length=1000)]


class Fault(msgspec.Struct, frozen=True):
    """Why one stage of decoding refused a record: a spec reason code and a short detail."""

    reason: Reason
    detail: str


DECODERS: Final = {
    JSON: msgspec.json.Decoder(Message).decode,
    MSGPACK: msgspec.msgpack.Decoder(Message).decode,
}
"""The raw decoders by codec: parse and validate, raising one of ``NOT_DECODABLE``. What they return must
also pass ``fast_checks`` (the name alphabets, no repeated key), and a JSON payload that is not ASCII a UTF-8
check; ``decode_payload`` does all of it and names the reason of a failure."""
STRICT_DECODERS: Final = {
    JSON: msgspec.json.Decoder(StrictMessage).decode,
    MSGPACK: msgspec.msgpack.Decoder(StrictMessage).decode,
}
"""The reference decoders: the whole payload table in one msgspec pass (``re`` for the name alphabets)."""
# Schema-less decoders that only answer "is this well-formed?". The float hook keeps a JSON
# number such as 1e400 (valid JSON, not finite) from failing here: that is a schema matter.
_WELL_FORMED: Final = {
    JSON: msgspec.json.Decoder(float_hook=float).decode,
    MSGPACK: msgspec.msgpack.Decoder().decode,
}
NOT_DECODABLE: Final = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def names_valid(message: Message) -> bool:
    """Whether ``device`` and every ``ch`` are of the spec's alphabets (``DEVICE_PATTERN``, ``CHANNEL_PATTERN``).

    The lengths (1..64) were checked by the decoder, so a name is valid when stripping its alphabet
    leaves nothing. Channel names repeat across messages: the valid ones are remembered (a bounded set).
    """
    if message.device.strip(_DEVICE_CHARS):
        return False
    seen = _VALID_CHANNELS
    for reading in message.readings:
        ch = reading.ch
        if ch not in seen:
            if ch.strip(_CHANNEL_CHARS):
                return False
            if len(seen) >= _MAX_CHANNELS:
                seen.clear()
            seen.add(ch)
    return True


_VALID_CHANNELS: set[str] = set()
_MAX_CHANNELS: Final = 4096


def fast_checks(message: Message, plaintext: bytes, codec: int) -> bool:
    """What ``DECODERS`` leave to check so that the decision is the ``STRICT_DECODERS``' one.

    No repeated ``device`` or ``ch`` key, and the name alphabets (``names_valid``). A repeated key
    matters because msgspec keeps its last value but validates every one, so an earlier invalid
    value rejects the message. Counting the key's bytes bounds the number of such keys from above:
    in JSON a key written with escapes is not counted, so a payload with a backslash is not checked
    here; in MessagePack a fixstr key carries its length in its type byte and any other encoding
    ends its prefix with the length. False sends the payload to the reference decoders.
    """
    readings = message.readings
    if codec == JSON:
        if (
            plaintext.count(b'"ch"') != len(readings)
            or plaintext.count(b'"device"') != 1
            or plaintext.find(b"\\") >= 0
        ):
            return False
    elif (
        plaintext.count(b"\xa2ch") + plaintext.count(b"\x02ch") != len(readings)
        or plaintext.count(b"device") != 1
    ):
        return False
    return names_valid(message)


def decode_payload(plaintext: bytes, codec: int) -> Message | Fault:
    """Decode and validate a plaintext written with ``codec`` (``JSON`` or ``MSGPACK``).

    Args:
        plaintext: The decrypted payload.
        codec: The envelope's codec byte, already checked to be in ``CODECS``.

    Returns:
        The ``Message``, or a ``Fault`` with ``malformed_payload`` or ``schema_violation``: exactly
        what the reference decoders (``STRICT_DECODERS``) decide.
    """
    if codec == JSON and not plaintext.isascii() and not _is_utf8(plaintext):
        return Fault(Reason.MALFORMED_PAYLOAD, "JSON payload is not valid UTF-8")
    try:
        message = DECODERS[codec](plaintext)
    except NOT_DECODABLE:
        pass
    else:
        if fast_checks(message, plaintext, codec):
            return message
    try:
        STRICT_DECODERS[codec](plaintext)
    except NOT_DECODABLE as exc:
        return _classify(plaintext, codec, exc)
    return DECODERS[codec](plaintext)  # valid, with a repeated key or escapes: the same values as a Message


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
