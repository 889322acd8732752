"""KMS-wrapped key rings against moto's KMS on loopback (the ``aws_stack`` fixture)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import boto3
import pytest

from wenu_stream.aws.keyring import load_kms_keyring, wrap_keyring
from wenu_stream.errors import KeyRingError
from wenu_stream.records.decoding import Accepted, decode_record
from wenu_stream.records.encoding import encode_payload, seal
from wenu_stream.records.payload import JSON, Message, Reading

pytestmark = pytest.mark.integration
CONTEXT = {"app": "wenu", "purpose": "readings"}
MESSAGE = Message(device="EM-9", seq=1, sent_at=1_700_000_000_000, readings=(Reading("energy_kwh", 1, 2.0),))


@pytest.fixture
def kms(aws_stack: Any) -> tuple[Any, str]:
    client = boto3.client("kms")
    return client, client.create_key(Description="wenu key ring test")["KeyMetadata"]["KeyId"]


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "ring.kms.json"
    path.write_text(json.dumps(document))
    return path


def _sealed(key_id: str, key: bytes) -> bytes:
    return seal(encode_payload(MESSAGE, JSON), key_id=key_id, key=key, codec=JSON, nonce=os.urandom(12))


def test_wrapped_ring_unwraps_and_decodes(kms: tuple[Any, str], tmp_path: Path) -> None:
    """wrap_keyring -> file -> load_kms_keyring gives a ring that opens envelopes of every key."""
    client, kms_key = kms
    plain = {"fleet-a": os.urandom(32), "fleet-b": os.urandom(32)}
    document = wrap_keyring(plain, client, kms_key, CONTEXT)
    assert all(base64.b64decode(blob) != plain[key_id] for key_id, blob in document["keys"].items())
    ring = load_kms_keyring(_write(tmp_path, document), client)
    assert ring.key_ids == ("fleet-a", "fleet-b")
    for key_id, key in plain.items():
        (result,) = decode_record(_sealed(key_id, key), "pk", ring)
        assert isinstance(result, Accepted) and result.key_id == key_id and result.message == MESSAGE


def test_rotation_adds_a_wrapped_key_and_old_ids_keep_working(kms: tuple[Any, str], tmp_path: Path) -> None:
    """A second file with an added key id opens both old and new envelopes."""
    client, kms_key = kms
    old, new = os.urandom(32), os.urandom(32)
    before = load_kms_keyring(_write(tmp_path, wrap_keyring({"k1": old}, client, kms_key, CONTEXT)), client)
    after = load_kms_keyring(
        _write(tmp_path, wrap_keyring({"k1": old, "k2": new}, client, kms_key, CONTEXT)), client
    )
    assert "k2" not in before and after.key_ids == ("k1", "k2")
    results = decode_record(_sealed("k1", old), "p", after) + decode_record(_sealed("k2", new), "p", after)
    assert [type(r) for r in results] == [Accepted, Accepted]


def test_wrong_encryption_context_is_refused(kms: tuple[Any, str], tmp_path: Path) -> None:
    """KMS refuses to unwrap under another encryption context; the error names the file and key id, not the key."""
    client, kms_key = kms
    key = os.urandom(32)
    document = wrap_keyring({"k1": key}, client, kms_key, CONTEXT) | {"encryption_context": {"app": "other"}}
    path = _write(tmp_path, document)
    with pytest.raises(KeyRingError, match="'k1'") as info:
        load_kms_keyring(path, client)
    assert str(path) in str(info.value) and base64.b64encode(key).decode() not in str(info.value)


def test_unwrapped_key_must_be_32_bytes(kms: tuple[Any, str], tmp_path: Path) -> None:
    """A wrapped data key of the wrong size is refused by id."""
    client, kms_key = kms
    blob = client.encrypt(KeyId=kms_key, Plaintext=b"x" * 16, EncryptionContext=CONTEXT)["CiphertextBlob"]
    document = {
        "format": "wenu-keyring-kms-v1",
        "kms_key_id": kms_key,
        "encryption_context": CONTEXT,
        "keys": {"short": base64.b64encode(blob).decode()},
    }
    with pytest.raises(KeyRingError, match="'short' must be 32 bytes"):
        load_kms_keyring(_write(tmp_path, document), client)


def test_cli_decodes_with_a_kms_keyring(
    kms: tuple[Any, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """records decode --kms-keyring unwraps through the SDK's own endpoint settings."""
    import io

    from wenu_stream.cli.main import main

    client, kms_key = kms
    key = os.urandom(32)
    path = _write(tmp_path, wrap_keyring({"k1": key}, client, kms_key, CONTEXT))
    line = json.dumps({"data_b64": base64.b64encode(_sealed("k1", key)).decode(), "partition_key": "p"})
    monkeypatch.setattr("sys.stdin", io.StringIO(line + "\n"))
    assert main(["records", "decode", "--kms-keyring", str(path)]) == 0
    (out,) = capsys.readouterr().out.splitlines()
    assert json.loads(out)["key_id"] == "k1"
