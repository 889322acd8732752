"""``wenu-stream records decode`` through ``cli.main``: every vector, bad lines, bad key rings."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest

from wenu_stream.cli.main import main
from wenu_stream.records.crypto import KeyRing
from wenu_stream.records.decoding import Accepted, decode_record

VECTORS_FILE = Path(__file__).parents[2] / "vectors" / "wire-v1.json"
VECTORS = json.loads(VECTORS_FILE.read_text())


def _run(
    argv: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, Any]], str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["records", "decode", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def _line(case: dict[str, Any]) -> str:
    return json.dumps({"data_b64": case["data_b64"], "partition_key": case["partition_key"]}) + "\n"


def test_every_vector_agrees_with_decode_record(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One output line per user record, equal to the vectors' expectations and to decode_record."""
    code, lines, err = _run(
        ["--keyring", str(VECTORS_FILE)], "".join(map(_line, VECTORS["cases"])), monkeypatch, capsys
    )
    assert (code, err) == (0, "")
    expected = [e for case in VECTORS["cases"] for e in case["expect"]]
    assert len(lines) == len(expected)
    for line, want in zip(lines, expected, strict=True):
        assert line["accepted"] == want["ok"]
        if want["ok"]:
            assert line["key_id"] == want["key_id"]
            assert json.loads(json.dumps(line["message"]), parse_int=float) == json.loads(
                json.dumps(want["message"]), parse_int=float
            )
        else:
            assert line["reason"] == want["error"] and line["detail"]
    ring = KeyRing.from_keys({k: base64.b64decode(v) for k, v in VECTORS["keyring"].items()})
    direct = [
        r
        for c in VECTORS["cases"]
        for r in decode_record(base64.b64decode(c["data_b64"]), c["partition_key"], ring)
    ]
    assert [line.get("key_id") or line["reason"] for line in lines] == [
        r.key_id if isinstance(r, Accepted) else str(r.reason) for r in direct
    ]


def test_bad_lines_are_reported_and_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-JSON line and a bad base64 line go to stderr with their line numbers; the rest decodes; exit 1."""
    good = _line(VECTORS["cases"][0])
    stdin = good + "not json\n" + '{"data_b64": "@@@", "partition_key": "x"}\n' + "\n" + good
    code, lines, err = _run(["--keyring", str(VECTORS_FILE)], stdin, monkeypatch, capsys)
    assert code == 1
    assert [line["accepted"] for line in lines] == [True, True]
    assert "line 2:" in err and "line 3:" in err and "line 5" not in err


def test_missing_keyring_exits_2_before_reading(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --keyring the command exits 2, names the flag and the fix, and reads nothing."""
    monkeypatch.delenv("WENU_KEYRING_FILE", raising=False)
    monkeypatch.delenv("WENU_KEYRING_KMS_FILE", raising=False)
    stdin = io.StringIO(_line(VECTORS["cases"][0]))
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["records", "decode"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "--keyring" in err and "Fix:" in err
    assert stdin.tell() == 0


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "not found"),
        ("{not json", "cannot read"),
        ('{"k1": "not-base64!"}', "'k1' is not a base64"),
        ('{"k1": "' + base64.b64encode(b"x" * 16).decode() + '"}', "'k1' must be 32 bytes"),
        ('{"bad id": "' + base64.b64encode(b"x" * 32).decode() + '"}', "key id 'bad id'"),
        ("{}", "empty"),
        ('{"format": "wenu-keyring-kms-v1", "keys": {}}', "--kms-keyring"),
    ],
)
def test_bad_keyring_file_exits_2(
    content: str | None,
    fragment: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad key-ring file exits 2 with the flag, the file, the key id and the fix; no key is shown."""
    path = tmp_path / "ring.json"
    if content is not None:
        path.write_text(content)
    code, lines, err = _run(["--keyring", str(path)], _line(VECTORS["cases"][0]), monkeypatch, capsys)
    assert (code, lines) == (2, [])
    assert "--keyring" in err and str(path) in err and fragment in err and "Fix:" in err
    assert base64.b64encode(b"x" * 32).decode() not in err


def test_keyring_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """WENU_KEYRING_FILE stands in for --keyring (flag > env > default); a plain {id: key} file works."""
    path = tmp_path / "ring.json"
    path.write_text(json.dumps(VECTORS["keyring"]))
    monkeypatch.setenv("WENU_KEYRING_FILE", str(path))
    code, lines, _ = _run([], _line(VECTORS["cases"][1]), monkeypatch, capsys)
    assert code == 0 and lines[0]["accepted"] and lines[0]["key_id"] == "fleet-b"
