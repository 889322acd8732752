"""The v1 envelope header: each check, in the spec's order, and the producer side."""

from __future__ import annotations

import pytest

from wenu_stream.records.encoding import seal
from wenu_stream.records.envelope import Envelope, header, is_valid_key_id, parse_envelope
from wenu_stream.records.payload import Fault
from wenu_stream.records.rejections import Reason

KEY = bytes(range(32))
NONCE = b"\x07" * 12


def _reason(data: bytes) -> Reason | None:
    result = parse_envelope(data)
    return result.reason if isinstance(result, Fault) else None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"", Reason.TRUNCATED, id="empty"),
        pytest.param(b"\x02\x09", Reason.TRUNCATED, id="short-before-version"),
        pytest.param(b"\x02\x01\x02ab" + bytes(28), Reason.UNSUPPORTED_VERSION, id="version-2"),
        pytest.param(b"\x01\x03\x02ab" + bytes(28), Reason.UNSUPPORTED_CODEC, id="codec-3"),
        pytest.param(b"\x01\x01\x00" + bytes(40), Reason.BAD_KEY_ID, id="length-0"),
        pytest.param(b"\x01\x01\x41" + b"a" * 100, Reason.BAD_KEY_ID, id="length-65"),
        pytest.param(b"\x01\x01\x41ab", Reason.BAD_KEY_ID, id="length-65-short"),
        pytest.param(b"\x01\x01\x05ab", Reason.TRUNCATED, id="key-id-cut"),
        pytest.param(b"\x01\x01\x05a b!c", Reason.BAD_KEY_ID, id="bad-characters-short-record"),
        pytest.param(b"\x01\x01\x02a/" + bytes(28), Reason.BAD_KEY_ID, id="slash"),
        pytest.param(b"\x01\x01\x02ab" + bytes(27), Reason.TRUNCATED, id="tag-cut"),
        pytest.param(b"\x01\x02\x02ab" + bytes(28), None, id="empty-ciphertext-ok"),
    ],
)
def test_header_checks_in_spec_order(data: bytes, reason: Reason | None) -> None:
    """Each malformed header gets the first failing check of the spec."""
    assert _reason(data) == reason


def test_parse_splits_what_seal_writes() -> None:
    """seal() and parse_envelope() agree on every part; the AAD is the header."""
    data = seal(b"{}", key_id="legacy.2025:01", key=KEY, codec=0x02, nonce=NONCE)
    envelope = parse_envelope(data)
    assert isinstance(envelope, Envelope)
    assert (envelope.codec, envelope.key_id, envelope.nonce) == (0x02, "legacy.2025:01", NONCE)
    assert envelope.header == header(0x02, "legacy.2025:01") == data[:17]
    assert len(envelope.sealed) == 2 + 16


@pytest.mark.parametrize(
    ("key_id", "valid"),
    [
        ("a", True),
        ("A-z_0.9:x", True),
        ("x" * 64, True),
        ("", False),
        ("x" * 65, False),
        ("a b", False),
        ("é", False),
        ("a\n", False),
    ],
)
def test_key_id_alphabet(key_id: str, valid: bool) -> None:
    """Key ids are 1..64 characters of [A-Za-z0-9._:-]."""
    assert is_valid_key_id(key_id.encode("utf-8")) is valid


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"key_id": "a b"}, "key id"),
        ({"codec": 3}, "codec"),
        ({"key": b"short"}, "32 bytes"),
        ({"nonce": b"n"}, "nonce"),
    ],
)
def test_seal_refuses_what_no_envelope_can_carry(kwargs: dict[str, object], fragment: str) -> None:
    """seal() raises ValueError naming the bad argument, never showing the key."""
    arguments: dict[str, object] = {"key_id": "k", "key": KEY, "codec": 0x01, "nonce": NONCE} | kwargs
    with pytest.raises(ValueError, match=fragment) as info:
        seal(b"{}", **arguments)  # type: ignore[arg-type]
    assert KEY.hex() not in str(info.value) and repr(KEY) not in str(info.value)
