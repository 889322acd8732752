"""Decode one Kinesis record into accepted messages and rejections. Pure; never raises on any input.

``decode_record`` composes the stages of ``docs/wire-format.md``:
1. KPL deaggregation (``kpl``): one Kinesis record -> one or more user records;
2. the envelope header (``envelope``): truncated .. bad_key_id, truncated;
3. decryption (``crypto``): unknown_key, auth_failed;
4. the payload (``payload``): malformed_payload, schema_violation.
Each user record ends as exactly one ``Accepted`` or one ``Rejected``.
"""

from __future__ import annotations

import msgspec
from cryptography.exceptions import InvalidTag

from wenu_stream.records.crypto import KeyRing, open_envelope
from wenu_stream.records.envelope import NONCE_SIZE, OVERHEAD, parse_envelope
from wenu_stream.records.kpl import MAGIC, deaggregate
from wenu_stream.records.payload import (
    DECODERS,
    MSGPACK,
    NOT_DECODABLE,
    Fault,
    Message,
    decode_payload,
    fast_checks,
)
from wenu_stream.records.rejections import Reason, Rejected

__all__ = ["Accepted", "Rejected", "decode_record", "decode_user_record"]


class Accepted(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A user record that decrypted and validated.

    ``raw`` is the user record's bytes (the envelope); ``sub_index`` is its index
    inside a KPL aggregate, 0 for a plain record. ``gc=False``: it holds only
    immutable values, so it can never be part of a reference cycle, and the
    collector need not track one object per record.
    """

    key_id: str
    message: Message
    raw: bytes
    partition_key: str
    sub_index: int = 0


def decode_record(data: bytes, partition_key: str, keyring: KeyRing) -> list[Accepted | Rejected]:
    """Decode a Kinesis record (plain or KPL-aggregated) into one result per user record.

    Args:
        data: The Kinesis record's data.
        partition_key: The Kinesis record's partition key.
        keyring: The keys by key id.

    Returns:
        One ``Accepted`` or ``Rejected`` per user record, in order.
    """
    if not data.startswith(MAGIC):  # the common case: skip the KPL path altogether
        return [decode_user_record(data, partition_key, 0, keyring)]
    return [
        decode_user_record(user, key, index, keyring)
        for index, (key, user) in enumerate(deaggregate(data, partition_key))
    ]


def decode_user_record(
    data: bytes, partition_key: str, sub_index: int, keyring: KeyRing
) -> Accepted | Rejected:
    """Decode one user record (an envelope), already out of any KPL aggregate.

    Fast path: one probe of ``keyring.lookup`` with the header bytes validates
    version, codec and key id at once; then decrypt and decode, with the payload
    checks of ``decode_payload`` reordered so that a good record pays only for
    ``fast_checks`` and a UTF-8 test of a non-ASCII JSON document. Anything else
    takes a slow path that finds the spec's reason in the spec's order.
    """
    try:
        end = 3 + data[2]
    except IndexError:  # under 3 bytes
        return _reject(_header_fault(data, keyring), data, partition_key, sub_index)
    header = data[:end]
    known = keyring.lookup(header)
    if known is None or len(data) < end + OVERHEAD:
        return _reject(_header_fault(data, keyring), data, partition_key, sub_index)
    key_id, cipher = known
    codec = data[1]
    try:
        plaintext = cipher.decrypt(data[end : end + NONCE_SIZE], data[end + NONCE_SIZE :], header)
    except InvalidTag:
        fault = Fault(Reason.AUTH_FAILED, f"AES-GCM authentication failed with key {key_id!r}")
        return _reject(fault, data, partition_key, sub_index)
    if codec == MSGPACK or plaintext.isascii():
        try:
            message = DECODERS[codec](plaintext)
        except NOT_DECODABLE:
            pass  # decode_payload below names the reason
        else:
            if fast_checks(message, plaintext, codec):
                return Accepted(
                    key_id=key_id, message=message, raw=data, partition_key=partition_key, sub_index=sub_index
                )
    # A payload that failed, or JSON that is not ASCII (decode_payload checks its UTF-8 first).
    result = decode_payload(plaintext, codec)
    if isinstance(result, Fault):
        return _reject(result, data, partition_key, sub_index)
    return Accepted(key_id=key_id, message=result, raw=data, partition_key=partition_key, sub_index=sub_index)


def _header_fault(data: bytes, keyring: KeyRing) -> Fault:
    envelope = parse_envelope(data)
    if isinstance(envelope, Fault):
        return envelope
    opened = open_envelope(envelope, keyring)
    if isinstance(opened, Fault):
        return opened
    raise AssertionError(f"key id {envelope.key_id!r} opens but missed the fast path")  # a bug: stop


def _reject(fault: Fault, data: bytes, partition_key: str, sub_index: int) -> Rejected:
    return Rejected(
        reason=fault.reason, detail=fault.detail, raw=data, partition_key=partition_key, sub_index=sub_index
    )
