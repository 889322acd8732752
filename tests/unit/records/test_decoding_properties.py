"""Properties: decode_record never raises and always answers with exactly the spec's codes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wenu_stream.records.crypto import KeyRing
from wenu_stream.records.decoding import Accepted, decode_record
from wenu_stream.records.encoding import aggregate, encode_payload, seal
from wenu_stream.records.kpl import deaggregate
from wenu_stream.records.payload import JSON, MSGPACK, Message, Reading
from wenu_stream.records.rejections import Reason, Rejected

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "wire-v1.json").read_text())
RING = KeyRing.from_keys({key_id: base64.b64decode(key) for key_id, key in VECTORS["keyring"].items()})
VALID = [base64.b64decode(c["data_b64"]) for c in VECTORS["cases"] if all(e["ok"] for e in c["expect"])]
SMALL_VALID = [data for data in VALID if len(data) < 2000]
REASONS = set(Reason)


def _check(data: bytes, partition_key: str = "pk") -> list[Accepted | Rejected]:
    results = decode_record(data, partition_key, RING)
    assert results, "every record yields at least one result"
    users = deaggregate(data, partition_key)
    assert len(results) == len(users)
    for result, (key, user) in zip(results, users, strict=True):
        assert type(result) in (Accepted, Rejected)
        assert (result.raw, result.partition_key) == (user, key)
        if isinstance(result, Rejected):
            assert result.reason in REASONS and result.detail
    return results


@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    """Random bytes are rejected with a spec code (they cannot authenticate), never raise."""
    assert all(isinstance(r, Rejected) for r in _check(data))


@given(st.sampled_from(VALID), st.data())
def test_bit_flips(original: bytes, data: st.DataObject) -> None:
    """Any single flipped bit of a valid record is rejected with a spec code, never accepted."""
    bit = data.draw(st.integers(0, len(original) * 8 - 1))
    flipped = bytearray(original)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert all(isinstance(r, Rejected) for r in _check(bytes(flipped)))


@given(st.sampled_from(SMALL_VALID), st.data())
def test_truncations(original: bytes, data: st.DataObject) -> None:
    """Every strict prefix of a valid record is rejected: truncated when cut inside the header, nonce or tag.

    A cut KPL aggregate fails its checksum, so it is one plain record starting with 0xF3.
    """
    cut = data.draw(st.integers(0, len(original) - 1))
    (result,) = _check(original[:cut])
    assert isinstance(result, Rejected)
    header_end = 3 + original[2]
    if original[0] != 0x01:
        assert result.reason == (Reason.TRUNCATED if cut < 3 else Reason.UNSUPPORTED_VERSION)
    elif cut < header_end + 28:
        assert result.reason == Reason.TRUNCATED
    else:
        assert result.reason == Reason.AUTH_FAILED


messages = st.builds(
    Message,
    device=st.from_regex(r"\A[A-Za-z0-9_.:-]{1,64}\Z"),
    seq=st.integers(0, 2**63 - 1),
    sent_at=st.integers(1, 2**53 - 1),
    readings=st.lists(
        st.builds(
            Reading,
            st.from_regex(r"\A[a-z0-9_]{1,64}\Z"),
            st.integers(1, 2**53 - 1),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        min_size=1,
        max_size=5,
    ).map(tuple),
)


# too_slow is a timing threshold: on a loaded shared machine input generation is slow, not wrong.
@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(messages, st.sampled_from([JSON, MSGPACK]), st.sampled_from(RING.key_ids)),
        min_size=1,
        max_size=4,
    ),
    st.binary(min_size=12, max_size=12),
    st.booleans(),
)
def test_sealed_messages_round_trip(
    batch: list[tuple[Message, int, str]], nonce: bytes, aggregated: bool
) -> None:
    """Whatever the producer seals (plain or in a KPL aggregate), decode_record accepts unchanged."""
    keys = {key_id: base64.b64decode(VECTORS["keyring"][key_id]) for key_id in RING.key_ids}
    envelopes = [
        seal(encode_payload(m, codec), key_id=k, key=keys[k], codec=codec, nonce=nonce)
        for m, codec, k in batch
    ]
    records = (
        [aggregate([(m.device, e) for (m, _, _), e in zip(batch, envelopes, strict=True)])]
        if aggregated
        else envelopes
    )
    results = [r for data in records for r in _check(data)]
    assert [(r.key_id, r.message) for r in results] == [(k, m) for m, _, k in batch]  # type: ignore[union-attr]
