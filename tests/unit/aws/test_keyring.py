"""KMS-wrapped key-ring files: a malformed field is a ``KeyRingError`` naming it, before any KMS call.

The client is a real boto3 KMS client aimed at a closed loopback port: a test that reached KMS would fail
with a connection error, not with the field's message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from wenu_stream.aws.keyring import KMS_FORMAT, load_kms_keyring
from wenu_stream.errors import KeyRingError

WRAPPED = {"format": KMS_FORMAT, "kms_key_id": "alias/wenu", "keys": {"k1": "AAAA"}}


@pytest.fixture
def kms() -> Any:
    return boto3.client(
        "kms",
        region_name="eu-west-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="test",
        aws_secret_access_key="test",  # no service behind it
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("encryption_context", "app=wenu"),
        ("encryption_context", ["app", "wenu"]),
        ("encryption_context", {"app": 1}),
        ("kms_key_id", 42),
    ],
)
def test_a_malformed_field_is_named(kms: Any, tmp_path: Path, field: str, value: object) -> None:
    """A context that is not an object of strings, or a key id that is not a string, names the field."""
    path = tmp_path / "ring.kms.json"
    path.write_text(json.dumps(WRAPPED | {field: value}))
    with pytest.raises(KeyRingError, match=field) as info:
        load_kms_keyring(path, kms)
    assert str(path) in str(info.value)


async def test_a_reloading_ring_reads_the_file_again_when_due_or_asked_and_keeps_the_last_good_one(
    tmp_path: Path,
) -> None:
    from tests.support.records import KEYS
    from tests.support.scenario import write_keyring
    from wenu_stream.aws.keyring import ReloadingKeyRing, load_keyring_file

    path = write_keyring(tmp_path / "ring.json", {"k1": KEYS["k1"]})
    now = [0.0]
    ring = ReloadingKeyRing(
        lambda: load_keyring_file(path), load_keyring_file(path), every_s=60, monotonic=lambda: now[0]
    )
    write_keyring(path, KEYS)  # a new device key is provisioned
    assert (await ring.current()).key_ids == ("k1",)  # not due yet
    now[0] = 60.0
    assert sorted((await ring.current()).key_ids) == ["k1", "k2"]
    path.write_text("{not json")
    ring.request()  # SIGHUP
    assert sorted((await ring.current()).key_ids) == ["k1", "k2"]  # a broken file keeps the last good ring
    write_keyring(path, {"k1": KEYS["k1"]})
    ring.request()
    assert (await ring.current()).key_ids == ("k1",)
