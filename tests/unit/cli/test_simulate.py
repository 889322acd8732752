"""`wenu-stream simulate`: dry-run output decodes as announced; bad arguments exit 2 before any side effect."""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path

import pytest

from tests.support.records import KEYS, RING
from wenu_stream.cli.main import main
from wenu_stream.records.decoding import Accepted, decode_record


@pytest.fixture
def keyring_file(tmp_path: Path) -> str:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in KEYS.items()}))
    return str(path)


def test_dry_run_prints_records_and_a_summary(
    keyring_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = tmp_path / "catalog.json"
    code = main(
        [
            "simulate",
            "--keyring",
            keyring_file,
            "--devices",
            "10",
            "--duration",
            "20",
            "--seed",
            "5",
            "--aggregate",
            "4",
            "--faults",
            "corrupt=0.1,duplicate=0.1",
            "--start",
            "2025-11-28T12:00:00Z",
            "--dry-run",
            "--catalog-out",
            str(catalog),
        ]
    )
    assert code == 0
    *lines, last = capsys.readouterr().out.splitlines()
    summary = json.loads(last)
    outcomes: Counter[str] = Counter()
    for line in lines:
        doc = json.loads(line)
        for result in decode_record(base64.b64decode(doc["data_b64"]), doc["partition_key"], RING):
            outcomes["ok" if isinstance(result, Accepted) else "rejected"] += 1
    assert summary["records"] == len(lines) and summary["dry_run"] and summary["records_put"] == 0
    assert outcomes["ok"] == summary["accepted"] + summary["duplicates"]
    assert outcomes["rejected"] == sum(summary["rejected"].values()) > 0
    assert summary["messages"] == 200 and summary["start_ms"] == 1_764_331_200_000
    assert len(json.loads(catalog.read_text())["companies"]) == 3


def test_same_seed_same_output(keyring_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "simulate",
        "--keyring",
        keyring_file,
        "--devices",
        "3",
        "--duration",
        "5",
        "--seed",
        "9",
        "--start",
        "2025-11-28T12:00:00+01:00",
        "--dry-run",
    ]
    main(args)
    first = capsys.readouterr().out.splitlines()[:-1]
    main(args)
    assert capsys.readouterr().out.splitlines()[:-1] == first


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--devices", "0"], "--devices"),
        (["--interval", "0"], "--interval"),
        (["--aggregate", "-1"], "--aggregate"),
        (["--faults", "corrupt=2"], "--faults"),
        (["--faults", "bogus=0.1"], "--faults"),
        (["--faults", "corrupt=0.7,tamper=0.7"], "--faults"),
        (["--start", "yesterday"], "--start"),
        (["--start", "2025-13-28T12:00:00"], "--start"),  # no such month (no offset is UTC, like everywhere)
        (["--key-ids", "k9"], "--key-ids"),
        (["--rate", "0"], "--rate"),
    ],
)
def test_bad_arguments_exit_2_naming_the_flag(
    extra: list[str], flag: str, keyring_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = tmp_path / "catalog.json"
    code = main(["simulate", "--keyring", keyring_file, "--catalog-out", str(catalog), "--dry-run", *extra])
    captured = capsys.readouterr()
    assert code == 2
    assert f"{flag}:" in captured.err and "Fix:" in captured.err
    assert captured.out == "" and not catalog.exists()


def test_missing_or_bad_key_ring_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WENU_KEYRING_FILE", raising=False)
    assert main(["simulate", "--dry-run"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"k1": base64.b64encode(b"short").decode()}))
    assert main(["simulate", "--dry-run", "--keyring", str(bad)]) == 2
    assert main(["simulate", "--dry-run", "--keyring", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("--keyring:") == 3 and "32 bytes" in err
