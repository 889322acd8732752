"""`simulate` puts into a real Kinesis emulator, and every record reads back intact, in order per device."""

from __future__ import annotations

import base64
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tests.fixtures.aws import create_stream
from tests.support.effects import stream_records
from tests.support.records import KEYS, RING
from wenu_stream.cli.main import main
from wenu_stream.devtools.emulator import Stack
from wenu_stream.devtools.simulate import (
    FaultRates,
    SimulationConfig,
    expected_outcomes,
    generate,
    parse_faults,
)
from wenu_stream.devtools.simulate.producer import KinesisProducer, Pacer, put_all
from wenu_stream.records.decoding import Accepted, decode_record

pytestmark = pytest.mark.integration


def per_key(records: list[tuple[str, bytes]]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = defaultdict(list)
    for key, data in records:
        out[key].append(data)
    return out


def test_cli_backfill_puts_every_record_in_order(
    aws_stack: Stack, unique_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create_stream(unique_name, 2)
    keyring = tmp_path / "keys.json"
    keyring.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in KEYS.items()}))
    faults = "corrupt=0.05,tamper=0.05,duplicate=0.05,duplicate_delay_s=0.5"
    code = main(
        [
            "simulate",
            "--stream",
            unique_name,
            "--keyring",
            str(keyring),
            "--devices",
            "20",
            "--duration",
            "10",
            "--seed",
            "11",
            "--backfill",
            "--faults",
            faults,
        ]
    )
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 0
    cfg = SimulationConfig(
        devices=20, duration_s=10, seed=11, start_ms=summary["start_ms"], faults=parse_faults(faults)
    )
    expected = [(r.partition_key, r.data) for r in generate(cfg, KEYS)]
    got = [(r["PartitionKey"], r["Data"]) for _, r in stream_records(unique_name)]
    assert summary["records_put"] == summary["records"] == len(expected) == len(got)
    assert per_key(got) == per_key(expected)  # same records, and each device's in the order sent


def test_aggregated_records_decode_to_the_expected_outcomes(aws_stack: Stack, unique_name: str) -> None:
    create_stream(unique_name, 1)
    cfg = SimulationConfig(
        devices=30,
        duration_s=10,
        seed=4,
        aggregate=25,
        faults=FaultRates(corrupt=0.05, unknown_key=0.05, malformed=0.05, duplicate=0.1),
    )
    produced = list(generate(cfg, KEYS))
    producer = KinesisProducer(unique_name)
    producer.check_stream()
    put_all(produced, producer.put, Pacer("none"))
    assert producer.stats.records_put == len(produced)
    results = [
        x for _, r in stream_records(unique_name) for x in decode_record(r["Data"], r["PartitionKey"], RING)
    ]
    accepted = Counter((x.message.device, x.message.seq) for x in results if isinstance(x, Accepted))
    rejected = Counter(x.reason.value for x in results if not isinstance(x, Accepted))
    want = expected_outcomes(produced)
    assert len(accepted) == want.accepted and sum(accepted.values()) == want.accepted + want.duplicates
    assert dict(rejected) == want.rejected


def test_a_missing_stream_exits_2_before_any_put(
    aws_stack: Stack, unique_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keyring = tmp_path / "keys.json"
    keyring.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in KEYS.items()}))
    catalog = tmp_path / "catalog.json"
    code = main(
        [
            "simulate",
            "--stream",
            unique_name,
            "--keyring",
            str(keyring),
            "--no-pace",
            "--catalog-out",
            str(catalog),
        ]
    )
    assert code == 2
    assert "--stream:" in capsys.readouterr().err and not catalog.exists()
