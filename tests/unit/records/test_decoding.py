"""decode_record against every test vector, the key ring, rotation and payload edge cases."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest

from wenu_stream.errors import KeyRingError
from wenu_stream.records.crypto import KeyRing
from wenu_stream.records.decoding import Accepted, decode_record
from wenu_stream.records.encoding import aggregate, encode_payload, seal
from wenu_stream.records.payload import JSON, MSGPACK, Message, Reading, decode_payload
from wenu_stream.records.rejections import Reason, Rejected

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "wire-v1.json").read_text())
CASES = VECTORS["cases"]
RING = KeyRing.from_keys({key_id: base64.b64decode(key) for key_id, key in VECTORS["keyring"].items()})
KEY_A = base64.b64decode(VECTORS["keyring"]["fleet-a"])
NONCE = b"\x01" * 12
MESSAGE = Message(
    device="EM-1",
    seq=5,
    sent_at=1_700_000_000_000,
    readings=(Reading("energy_kwh", 1_700_000_000_000, 12.5),),
)


def _as_floats(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _as_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_floats(v) for v in value]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _as_expect(result: Accepted | Rejected) -> dict[str, Any]:
    if isinstance(result, Accepted):
        return {
            "ok": True,
            "key_id": result.key_id,
            "message": _as_floats(msgspec.to_builtins(result.message)),
        }
    return {"ok": False, "error": str(result.reason)}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case["name"])
def test_vector(case: dict[str, Any]) -> None:
    """Every vector decodes to its expected results, one per user record, in order (values as floats)."""
    data = base64.b64decode(case["data_b64"])
    results = decode_record(data, case["partition_key"], RING)
    expected = [e if not e["ok"] else {**e, "message": _as_floats(e["message"])} for e in case["expect"]]
    assert [_as_expect(r) for r in results] == expected
    assert [r.sub_index for r in results] == list(range(len(results)))
    if not case["aggregated"]:
        assert all(r.raw == data and r.partition_key == case["partition_key"] for r in results)


def test_vectors_cover_every_reason() -> None:
    """The vectors exercise every reason code of the spec."""
    seen = {e["error"] for case in CASES for e in case["expect"] if not e["ok"]}
    assert seen == {str(reason) for reason in Reason}


def test_aggregated_user_records_carry_their_own_key_raw_and_index() -> None:
    """Inside a KPL aggregate each result names its own partition key, envelope and index."""
    envelopes = [
        seal(encode_payload(MESSAGE, JSON), key_id="fleet-a", key=KEY_A, codec=JSON, nonce=NONCE),
        b"\x09junk",
    ]
    results = decode_record(aggregate([("p1", envelopes[0]), ("p2", envelopes[1])]), "outer", RING)
    assert [(type(r), r.partition_key, r.raw, r.sub_index) for r in results] == [
        (Accepted, "p1", envelopes[0], 0),
        (Rejected, "p2", envelopes[1], 1),
    ]


def test_rotation_adds_a_key_and_old_ids_keep_working() -> None:
    """with_key() returns a new ring with the new id; records sealed with the old id still decode."""
    new_key = bytes(range(32))
    rotated = RING.with_key("fleet-a.2", new_key)
    old = seal(encode_payload(MESSAGE, MSGPACK), key_id="fleet-a", key=KEY_A, codec=MSGPACK, nonce=NONCE)
    new = seal(encode_payload(MESSAGE, MSGPACK), key_id="fleet-a.2", key=new_key, codec=MSGPACK, nonce=NONCE)
    assert [type(r) for r in decode_record(old, "p", rotated) + decode_record(new, "p", rotated)] == [
        Accepted
    ] * 2
    assert decode_record(new, "p", RING)[0].reason == Reason.UNKNOWN_KEY  # type: ignore[union-attr]
    assert "fleet-a.2" in rotated and "fleet-a.2" not in RING


def test_key_ring_is_immutable_and_never_shows_keys() -> None:
    """No attribute can be set, and neither repr nor errors contain key material."""
    with pytest.raises(AttributeError):
        RING.lookup = None  # type: ignore[misc]
    assert repr(RING) == "KeyRing(key_ids=['fleet-a', 'fleet-b', 'legacy.2025:01'])"
    assert all(value not in repr(RING) for value in VECTORS["keyring"].values())
    with pytest.raises(KeyRingError, match="already in the key ring"):
        RING.with_key("fleet-a", KEY_A)
    with pytest.raises(KeyRingError, match="32 bytes") as info:
        KeyRing.from_keys({"k": KEY_A[:31]})
    assert KEY_A[:31].hex() not in str(info.value) and repr(KEY_A[:31]) not in str(info.value)
    with pytest.raises(KeyRingError, match="key id"):
        KeyRing.from_keys({"bad id": KEY_A})


def test_union_refuses_a_key_id_in_both_rings() -> None:
    """union() joins disjoint rings and refuses overlapping ones."""
    other = KeyRing.from_keys({"fleet-z": KEY_A})
    assert RING.union(other).key_ids == ("fleet-a", "fleet-b", "fleet-z", "legacy.2025:01")
    with pytest.raises(KeyRingError, match="both"):
        RING.union(RING)


@pytest.mark.parametrize(
    ("plaintext", "codec", "reason"),
    [
        pytest.param(
            b'{"device":"a","x":"\xff"}', JSON, Reason.MALFORMED_PAYLOAD, id="bad-utf8-in-unknown-field"
        ),
        pytest.param(b"[1, 2, oops", JSON, Reason.MALFORMED_PAYLOAD, id="type-error-then-syntax-error"),
        pytest.param(b"[" * 5000 + b"]" * 5000, JSON, Reason.MALFORMED_PAYLOAD, id="nested-too-deep"),
        pytest.param(
            b'{"device":"a","seq":1,"sent_at":1,"readings":[{"ch":"c","t":1,"v":1e400}]}',
            JSON,
            Reason.SCHEMA_VIOLATION,
            id="json-number-overflows-to-infinity",
        ),
        pytest.param(
            b'{"device":"a\\n","seq":1,"sent_at":1,"readings":[{"ch":"c","t":1,"v":1}]}',
            JSON,
            Reason.SCHEMA_VIOLATION,
            id="device-with-trailing-newline",
        ),
        pytest.param(
            b'{"device":"a","seq":9223372036854775808,"sent_at":1,"readings":[{"ch":"c","t":1,"v":1}]}',
            JSON,
            Reason.SCHEMA_VIOLATION,
            id="seq-2-63",
        ),
        pytest.param(
            b'{"device":"a","seq":1,"sent_at":9007199254740992,"readings":[{"ch":"c","t":1,"v":1}]}',
            JSON,
            Reason.SCHEMA_VIOLATION,
            id="sent-at-2-53",
        ),
        pytest.param(
            b'{"device":"a","seq":1,"sent_at":1,"readings":[{"ch":"C","t":1,"v":1}]}',
            JSON,
            Reason.SCHEMA_VIOLATION,
            id="upper-case-channel",
        ),
        pytest.param(
            b'{"device":"a","seq":1,"sent_at":1,"readings":[{"ch":"c","t":1,"v":true}]}',
            JSON,
            Reason.SCHEMA_VIOLATION,
            id="boolean-value",
        ),
        pytest.param(
            msgspec.msgpack.encode(
                {"device": "a", "seq": 1, "sent_at": 1, "readings": [{"ch": "c", "t": 1, "v": math.inf}]}
            ),
            MSGPACK,
            Reason.SCHEMA_VIOLATION,
            id="msgpack-infinity",
        ),
        pytest.param(
            msgspec.msgpack.encode(
                {"device": "a", "seq": 1, "sent_at": 1, "readings": [{"ch": "c", "t": 1, "v": 1}] * 1001}
            ),
            MSGPACK,
            Reason.SCHEMA_VIOLATION,
            id="1001-readings",
        ),
        pytest.param(b"\xc1", MSGPACK, Reason.MALFORMED_PAYLOAD, id="msgpack-bad-opcode"),
        pytest.param(
            msgspec.msgpack.encode({"a": 1}) + b"\x00",
            MSGPACK,
            Reason.MALFORMED_PAYLOAD,
            id="msgpack-trailing-bytes",
        ),
    ],
)
def test_payload_edges(plaintext: bytes, codec: int, reason: Reason) -> None:
    """Edge payloads get malformed_payload or schema_violation as the spec orders them."""
    result = decode_payload(plaintext, codec)
    assert not isinstance(result, Message)
    assert result.reason == reason


def test_unknown_fields_are_ignored_at_both_levels() -> None:
    """Extra fields in the message and in readings do not reject it (forward compatibility)."""
    plaintext = (
        b'{"device":"a","fw":[1,{"b":2}],"seq":1,"sent_at":1,"readings":[{"ch":"c","t":1,"v":2,"q":"x"}]}'
    )
    assert decode_payload(plaintext, JSON) == Message(
        device="a", seq=1, sent_at=1, readings=(Reading("c", 1, 2.0),)
    )


@pytest.mark.parametrize("codec", [JSON, MSGPACK])
def test_encode_payload_round_trips(codec: int) -> None:
    """What the producer encodes, the consumer decodes to an equal Message."""
    assert decode_payload(encode_payload(MESSAGE, codec), codec) == MESSAGE


def _reference(plaintext: bytes, codec: int) -> tuple[str, Any]:
    """What the strict decoders (the whole payload table in msgspec, patterns included) decide."""
    from wenu_stream.records.payload import NOT_DECODABLE, STRICT_DECODERS

    if codec == JSON and not plaintext.isascii():
        try:
            plaintext.decode("utf-8")
        except UnicodeDecodeError:
            return "reject", Reason.MALFORMED_PAYLOAD
    try:
        strict = STRICT_DECODERS[codec](plaintext)
    except NOT_DECODABLE:
        result = decode_payload(plaintext, codec)
        assert not isinstance(result, Message)
        return "reject", result.reason
    return "accept", msgspec.to_builtins(strict)


def _verdict(plaintext: bytes, codec: int) -> tuple[str, Any]:
    result = decode_payload(plaintext, codec)
    if isinstance(result, Message):
        return "accept", msgspec.to_builtins(result)
    return "reject", result.reason


_R = {"ch": "c", "t": 1, "v": 1.0}
_NAME_CASES = [
    b'{"device":"bad id","device":"EM-1","seq":1,"sent_at":1,"readings":[{"ch":"c","t":1,"v":1}]}',
    b'{"device":"EM-1","device":"bad id","seq":1,"sent_at":1,"readings":[{"ch":"c","t":1,"v":1}]}',
    b'{"device":"EM-1","seq":1,"sent_at":1,"readings":[{"ch":"C","ch":"c","t":1,"v":1}]}',
    b'{"\\u0064evice":"bad id","device":"EM-1","seq":1,"sent_at":1,"readings":[{"ch":"c","t":1,"v":1}]}',
    b'{"device":"EM-1","seq":1,"sent_at":1,"readings":[{"\\u0063h":"C","ch":"c","t":1,"v":1}]}',
    b'{"device":"EM-1","seq":1,"sent_at":1,"readings":[{"ch":"c","t":1,"v":1}],"x":"\\"ch\\""}',
    b'{"device":"EM-1","x":{"device":"bad id","ch":"C"},"seq":1,"sent_at":1,"readings":[{"ch":"c","t":1,"v":1}]}',
    b'{"device":"EM-1\\u00e9","seq":1,"sent_at":1,"readings":[{"ch":"c","t":1,"v":1}]}',
    b'{"device":"EM-1","seq":1,"sent_at":1,"readings":[{"ch":"c\\n","t":1,"v":1}]}',
    '{"device":"EM-\u00e9","seq":1,"sent_at":1,"readings":[{"ch":"c","t":1,"v":1}]}'.encode(),
    b'{"device":"EM-1","seq":1,"sent_at":1,"readings":[{"ch":"c","t":1,"v":1},{"ch":"a b","t":1,"v":1}]}',
    b'{"device":"a.b:c_d-E9","seq":1,"sent_at":1,"readings":[{"ch":"z_09","t":1,"v":1}]}',
]
_MSGPACK_CASES = [
    # a repeated key as fixstr, as str8 (non-canonical) and as a bin key
    b"\x85\xa6device\xa6bad id\xa6device\xa4EM-1\xa3seq\x01\xa7sent_at\x01\xa8readings\x91"
    + msgspec.msgpack.encode(_R),
    b"\x85\xa6device\xa4EM-1\xd9\x06device\xa6bad id\xa3seq\x01\xa7sent_at\x01\xa8readings\x91"
    + msgspec.msgpack.encode(_R),
    b"\x84\xa6device\xa4EM-1\xa3seq\x01\xa7sent_at\x01\xa8readings\x91\x84\xa2ch\xa1C\xd9\x02ch\xa1c\xa1t\x01\xa1v\x01",
    b"\x84\xa6device\xa4EM-1\xa3seq\x01\xa7sent_at\x01\xa8readings\x91\x84\xa2ch\xa1c\xa2ch\xa1C\xa1t\x01\xa1v\x01",
    msgspec.msgpack.encode(
        {"device": "EM-1", "seq": 1, "sent_at": 1, "readings": [{"ch": "charge", "t": 1, "v": 1}]}
    ),
    msgspec.msgpack.encode({"device": "EM 1", "seq": 1, "sent_at": 1, "readings": [_R]}),
    msgspec.msgpack.encode({"device": "EM-1", "seq": 1, "sent_at": 1, "readings": [_R, {**_R, "ch": "Ch"}]}),
]


@pytest.mark.parametrize(
    ("plaintext", "codec"), [(p, JSON) for p in _NAME_CASES] + [(p, MSGPACK) for p in _MSGPACK_CASES]
)
def test_name_checks_decide_as_the_strict_decoders(plaintext: bytes, codec: int) -> None:
    """The alphabets checked after decoding give the decisions of msgspec patterns, repeated keys included."""
    assert _verdict(plaintext, codec) == _reference(plaintext, codec)
    data = seal(plaintext, key_id="fleet-a", key=KEY_A, codec=codec, nonce=NONCE)
    (result,) = decode_record(data, "pk", RING)
    verdict = (
        ("accept", msgspec.to_builtins(result.message))
        if isinstance(result, Accepted)
        else ("reject", result.reason)
    )
    assert verdict == _reference(plaintext, codec)
