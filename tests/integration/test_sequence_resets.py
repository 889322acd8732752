"""A counter that restarts, a stray far-ahead seq, a wrap, shuffled arrival and a kill -9: no reading is lost.

Two runs over the same readings: the reference's devices number their messages
1, 2, 3, ... and send them in order; the test's devices reboot (D0), send one
corrupted far-ahead seq first, in the middle or last (D1-D3), wrap their
counter (D4), arrive shuffled within the lateness with repeats (all), and have
one message arrive so late that the duplicate memory cannot tell it from a
replay (D5: parked as ``stale_sequence``, then re-driven). The processing
worker of the test run is killed with SIGKILL once it has checkpointed. Stats
windows, staged warehouse rows (and the rows loaded into PostgreSQL) and totals
must equal the reference's.
"""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fixtures.aws import create_stream
from tests.support.effects import checkpointed, staged_rows, stats_table, wait_for
from tests.support.records import KEYS, envelope
from tests.support.scenario import fleet_catalog_for, prepare, run_config, start_worker, write_keyring
from wenu_stream.cli.main import main
from wenu_stream.devtools.simulate.fleet import CHANNELS, build_fleet
from wenu_stream.ops.report import dead_letter_counts, shard_totals, sum_totals
from wenu_stream.records.payload import Message, Reading

pytestmark = pytest.mark.integration

T0 = 1_764_300_000_000
MESSAGES = 40
FLEET = build_fleet(6)


def readings_of(device: Any, i: int) -> tuple[Reading, ...]:
    t = T0 + i * 60_000
    return tuple(
        Reading(ch=ch, t=t, v=float(i * 10 + k) if kind == "counter" else float((i * 7 + k) % 50))
        for k, (ch, _, kind, _) in enumerate(CHANNELS[device.kind])
    )


def counters(n: int) -> dict[str, list[int]]:
    """The seq of message i of each device in the test run (the reference uses i + 1)."""
    plain = list(range(1, n + 1))
    stray = 999_999_999
    return {
        FLEET[0].id: list(range(1, n // 2 + 1)) + list(range(1, n - n // 2 + 1)),  # reboot: seqs again
        FLEET[1].id: [stray, *plain[1:]],  # stray first
        FLEET[2].id: [*plain[: n // 2], stray, *plain[n // 2 + 1 :]],  # stray in the middle
        FLEET[3].id: [*plain[:-1], stray],  # stray last
        FLEET[4].id: [(2**63 - 1 - n // 2 + i) % 2**63 for i in range(n)],  # the counter wraps
        FLEET[5].id: plain,
    }


def messages(reference: bool) -> list[tuple[str, bytes]]:
    """(partition key, record data) in put order."""
    rng = random.Random(5)
    seqs = counters(MESSAGES)
    out: list[tuple[float, str, bytes]] = []
    for device in FLEET:
        for i in range(MESSAGES):
            seq = i + 1 if reference else seqs[device.id][i]
            m = Message(
                device=device.id, seq=seq, sent_at=T0 + i * 60_000 + 500, readings=readings_of(device, i)
            )
            data = envelope(m)
            if reference:
                out.append((i, device.id, data))
                continue
            late = device is FLEET[5] and i == 2  # arrives after every other message of its device: stale
            out.append(
                (MESSAGES + 1 if late else i + rng.uniform(0, 4), device.id, data)
            )  # shuffled a little
            if not late and rng.random() < 0.1:
                out.append((i + rng.uniform(0, 4), device.id, data))  # and repeated
    return [(pk, data) for _, pk, data in sorted(out, key=lambda m: m[0])]


def put(stream: str, records: list[tuple[str, bytes]]) -> None:
    kinesis = boto3.client("kinesis")
    for start in range(0, len(records), 200):
        batch = records[start : start + 200]
        out = kinesis.put_records(
            StreamName=stream, Records=[{"PartitionKey": k, "Data": d} for k, d in batch]
        )
        assert out["FailedRecordCount"] == 0


def projected(rows: set[tuple[object, ...]]) -> set[tuple[object, ...]]:
    """Staged rows without what the two runs number differently (seq, Kinesis position)."""
    return {(r[0], *r[2:13], r[16]) for r in rows}  # device, ch .. raw_value, sent_at


def without_seq(items: dict[Any, Any]) -> dict[Any, Any]:
    """Window items with the seq of their first/last reading (a tie-break, numbered differently) left out."""
    out = {}
    for key, item in items.items():
        agg = json.loads(item["agg"]["B"])
        out[key] = item | {"agg": [[*v[:1], *v[2:]] if isinstance(v, list) else v for v in agg]}
    return out


def load(
    env: dict[str, str], schema: str, dsn: str, mp: pytest.MonkeyPatch, capsys: Any
) -> set[tuple[Any, ...]]:
    """Load a run's staged files into ``schema`` of PostgreSQL; its readings as (device, ch, t, value, sent_at)."""
    import psycopg

    for key, value in env.items():
        mp.setenv(key, value)
    mp.setenv("WENU_WAREHOUSE_SCHEMA", schema)
    assert main(["warehouse", "load", "--dsn", dsn]) == 0
    capsys.readouterr()
    with psycopg.connect(dsn) as conn:
        return set(conn.execute(f"SELECT device, ch, t_ms, value, sent_at FROM {schema}.readings").fetchall())


@pytest.mark.slow
def test_resets_strays_wraps_and_shuffles_lose_nothing_and_count_nothing_twice(
    aws_stack: object,
    unique_name: str,
    tmp_path: Path,
    postgres_database: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    catalog = fleet_catalog_for(len(FLEET))
    runs = {}
    for name, reference in (("ref", True), ("test", False)):
        stream = f"{unique_name}-{name}"
        create_stream(stream, 1)
        put(stream, messages(reference))
        env = run_config(stream, stream, keyring, WENU_SINKS_DEDUP_WINDOW=16, WENU_KINESIS_MAX_RECORDS=5)
        runs[name] = (env, prepare(env, catalog))
    ref_env, ref = runs["ref"]
    assert start_worker(ref_env | {"WENU_KINESIS_IDLE_EXIT_S": "2"}, tmp_path / "ref.log").wait(240) == 0

    env, test = runs["test"]
    worker = start_worker(env, tmp_path / "killed.log")
    wait_for(lambda: checkpointed(test) >= 1, 120, "a first checkpoint")
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    final = env | {"WENU_KINESIS_IDLE_EXIT_S": "2"}
    assert start_worker(final, tmp_path / "final.log").wait(240) == 0, (tmp_path / "final.log").read_text()[
        -3000:
    ]
    assert dead_letter_counts(test) == {"stale_sequence": 1}  # D5's message 3: parked, not dropped

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["dlq", "redrive", "--reason", "stale_sequence"]) == 0
    assert json.loads(capsys.readouterr().out)["redriven"] == 1
    assert start_worker(final, tmp_path / "redriven.log").wait(240) == 0

    got, want = sum_totals(shard_totals(test)), sum_totals(shard_totals(ref))
    assert want.accepted == len(FLEET) * MESSAGES and want.duplicates == 0
    assert got.accepted == want.accepted and got.duplicates > 0
    assert dead_letter_counts(test) == {}
    assert without_seq(stats_table(test)) == without_seq(stats_table(ref)) != {}
    test_rows, ref_rows = staged_rows(test), staged_rows(ref)
    assert projected(test_rows) == projected(ref_rows)
    assert len({r[:2] + r[2:4] for r in test_rows if r[0] == FLEET[0].id}) < len(
        [r for r in test_rows if r[0] == FLEET[0].id]
    )  # D0 reuses (seq, ch, idx) after its reboot: only sent_at keeps its readings apart
    loaded = load(env, "test", postgres_database, monkeypatch, capsys)
    assert loaded == load(ref_env, "ref", postgres_database, monkeypatch, capsys)
    assert len(loaded) == len(ref_rows) == len(test_rows)
