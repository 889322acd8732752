"""The KCL adapter speaks the MultiLangDaemon protocol through amazon-kclpy, driven here with StringIO (no Java)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from amazon_kclpy import kcl
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from tests.protocol.fakes import (
    RecordingOutput,
    checkpoint_error,
    checkpoint_ok,
    initialize,
    process_records,
    record,
    script,
)
from tests.support.processors import FailingSinkProcessor, FakeShardProcessor
from wenu_stream.drivers.kcl.adapter import EXIT_PROCESSING_FAILED, Lineage, WenuRecordProcessor
from wenu_stream.health import Health
from wenu_stream.metrics import Metrics
from wenu_stream.model import HashRange, KinesisRecord

ROOT = Path(__file__).resolve().parents[2]
SHARD = "shardId-000000000007"


def drive(
    processor: FakeShardProcessor, *messages: dict[str, Any], parents: Any = None, **adapter_kw: Any
) -> tuple[list[Any], str, int | None]:
    """Run kclpy's KCLProcess over ``messages``; return the event log, stdout and the exit code (None: no exit)."""
    events = processor.events
    output = RecordingOutput(events)
    errors = StringIO()
    adapter = WenuRecordProcessor(
        lambda shard_id: processor,
        exit_process=sys.exit,
        sleep=lambda _s: None,
        parents=parents,
        **adapter_kw,
    )
    code = None
    try:
        kcl.KCLProcess(
            adapter, input_file=StringIO(script(*messages)), output_file=output, error_file=errors
        ).run()
    except SystemExit as stop:
        code = stop.code
    finally:
        adapter.runner.close()
    assert errors.getvalue() == "", "kclpy caught an exception from a callback: the batch would be skipped"
    return events, output.getvalue(), code


def outputs(events: list[Any]) -> list[tuple[Any, ...]]:
    return [e[1:] for e in events if e[0] == "out"]


def test_checkpoint_lands_after_process_returned_at_last_record_and_subsequence() -> None:
    fake = FakeShardProcessor(answers=[True])
    events, _, code = drive(
        fake,
        initialize(SHARD),
        process_records(record("101"), record("205", sub=0), record("205", sub=3)),
        checkpoint_ok("205", 3),
    )
    assert code is None
    process_at = events.index(("process", ["101", "205", "205"], 0))
    checkpoint_at = events.index(("out", "checkpoint", "205", 3, None))
    assert process_at < checkpoint_at
    assert outputs(events) == [
        ("status", None, None, "initialize"),
        ("checkpoint", "205", 3, None),
        ("status", None, None, "processRecords"),
    ]


def test_no_checkpoint_while_the_processor_holds_effects_in_memory() -> None:
    fake = FakeShardProcessor(answers=[False, True])
    events, _, _ = drive(
        fake,
        initialize(SHARD),
        process_records(record("1"), record("2")),
        process_records(record("3")),
        checkpoint_ok("3", 0),
    )
    assert [o for o in outputs(events) if o[0] == "checkpoint"] == [("checkpoint", "3", 0, None)]


def test_an_idle_poll_that_commits_checkpoints_the_last_record_seen() -> None:
    fake = FakeShardProcessor(answers=[False, True])
    events, _, _ = drive(
        fake,
        initialize(SHARD),
        process_records(record("41", sub=1)),
        process_records(),
        checkpoint_ok("41", 1),
    )
    assert ("process", [], 0) in events
    assert [o for o in outputs(events) if o[0] == "checkpoint"] == [("checkpoint", "41", 1, None)]


def test_a_sink_failure_exits_on_purpose_without_checkpoint() -> None:
    fake = FailingSinkProcessor()
    with capture_logs() as logs:
        events, _, code = drive(fake, initialize(SHARD), process_records(record("9")))
    assert code == EXIT_PROCESSING_FAILED
    assert not [o for o in outputs(events) if o[0] == "checkpoint"]
    assert ("status", None, None, "processRecords") not in outputs(events)
    failure = next(entry for entry in logs if entry["event"] == "process_failed")
    assert failure["exit_code"] == EXIT_PROCESSING_FAILED and failure["log_level"] == "error"


def test_lease_lost_closes_without_checkpoint() -> None:
    fake = FakeShardProcessor(answers=[False])
    events, _, code = drive(fake, initialize(SHARD), process_records(record("5")), {"action": "leaseLost"})
    assert code is None
    assert ("close",) in events and ("flush",) not in events
    assert [o[0] for o in outputs(events)] == ["status", "status", "status"]
    assert outputs(events)[-1] == ("status", None, None, "leaseLost")


def test_shard_end_commits_then_checkpoints_the_end_of_the_shard() -> None:
    fake = FakeShardProcessor(answers=[False])
    events, _, _ = drive(
        fake,
        initialize(SHARD),
        process_records(record("5")),
        {"action": "shardEnded"},
        checkpoint_ok("SHARD_END"),
    )
    ended, checkpoint, closed = (
        events.index(("shard_ended",)),
        events.index(("out", "checkpoint", None, None, None)),
        events.index(("close",)),
    )
    assert ended < checkpoint < closed
    assert outputs(events)[-1] == ("status", None, None, "shardEnded")


def test_shutdown_requested_flushes_and_checkpoints_what_is_durable() -> None:
    fake = FakeShardProcessor(answers=[False], flush_to="77")
    events, _, _ = drive(
        fake,
        initialize(SHARD),
        process_records(record("70"), record("77", sub=2)),
        {"action": "shutdownRequested"},
        checkpoint_ok("77", 2),
    )
    assert events.index(("flush",)) < events.index(("out", "checkpoint", "77", 2, None))
    assert outputs(events)[-1] == ("status", None, None, "shutdownRequested")


def test_shutdown_requested_with_nothing_new_does_not_checkpoint() -> None:
    fake = FakeShardProcessor(answers=[True], flush_to=None)
    events, _, _ = drive(
        fake,
        initialize(SHARD),
        process_records(record("1")),
        checkpoint_ok("1", 0),
        {"action": "shutdownRequested"},
    )
    assert [o for o in outputs(events) if o[0] == "checkpoint"] == [("checkpoint", "1", 0, None)]


def test_throttled_checkpoint_is_retried() -> None:
    fake = FakeShardProcessor(answers=[True])
    events, _, code = drive(
        fake,
        initialize(SHARD),
        process_records(record("3")),
        checkpoint_error("ThrottlingException", "3", 0),
        checkpoint_ok("3", 0),
    )
    assert code is None
    assert [o for o in outputs(events) if o[0] == "checkpoint"] == [("checkpoint", "3", 0, None)] * 2
    assert outputs(events)[-1] == ("status", None, None, "processRecords")


def test_a_refused_checkpoint_stops_the_shard_quietly() -> None:
    fake = FakeShardProcessor(answers=[True, True])
    events, _, code = drive(
        fake,
        initialize(SHARD),
        process_records(record("3")),
        checkpoint_error("ShutdownException", "3", 0),
        process_records(record("4")),
        {"action": "leaseLost"},
    )
    assert code is None
    assert [e for e in events if e[0] == "process"] == [("process", ["3"], 0)]
    assert ("close",) in events


def test_an_unknown_checkpoint_error_exits_without_processing_further() -> None:
    fake = FakeShardProcessor(answers=[True, True])
    events, _, code = drive(
        fake,
        initialize(SHARD),
        process_records(record("3")),
        checkpoint_error("KinesisClientLibIOException", "3", 0),
        process_records(record("4")),
    )
    assert code == EXIT_PROCESSING_FAILED
    assert [e for e in events if e[0] == "process"] == [("process", ["3"], 0)]


def test_initialize_passes_the_daemon_checkpoint_with_its_subsequence() -> None:
    fake = FakeShardProcessor()
    events, _, _ = drive(fake, initialize(SHARD, "4950", 2))
    assert events[0] == ("initialize", SHARD, "4950:2", ())
    fake = FakeShardProcessor()
    events, _, _ = drive(fake, initialize(SHARD, "TRIM_HORIZON", 0))
    assert events[0] == ("initialize", SHARD, "TRIM_HORIZON", ())


def test_a_fresh_shard_gets_its_parents_from_the_lookup() -> None:
    asked: list[str] = []

    def lookup(shard_id: str) -> list[str]:
        asked.append(shard_id)
        return ["shardId-000000000001", "shardId-000000000002"]

    events, _, _ = drive(FakeShardProcessor(), initialize(SHARD, "TRIM_HORIZON"), parents=lookup)
    assert asked == [SHARD]
    assert events[0] == (
        "initialize",
        SHARD,
        "TRIM_HORIZON",
        ("shardId-000000000001", "shardId-000000000002"),
    )


class RangeRecorder(FakeShardProcessor):
    """Records the hash range ``initialize`` was given."""

    hash_range: HashRange | None = None

    async def initialize(
        self,
        shard_id: str,
        checkpoint: str | None,
        parent_shard_ids: Sequence[str],
        hash_range: HashRange | None = None,
    ) -> None:
        self.hash_range = hash_range
        await super().initialize(shard_id, checkpoint, parent_shard_ids)


def test_a_fresh_child_gets_its_parents_and_hash_range_from_a_lineage_lookup() -> None:
    lineage = Lineage(("shardId-000000000001",), HashRange(2**126, 2**127 - 1))
    processor = RangeRecorder()
    events, _, code = drive(processor, initialize(SHARD, "TRIM_HORIZON"), parents=lambda _shard: lineage)
    assert code is None and events[0] == ("initialize", SHARD, "TRIM_HORIZON", ("shardId-000000000001",))
    assert processor.hash_range == HashRange(2**126, 2**127 - 1)


def test_a_shard_resuming_from_a_sequence_number_takes_its_hash_range_and_no_parents() -> None:
    processor = RangeRecorder()
    lineage = Lineage(("shardId-000000000001",), HashRange(0, 2**127 - 1))
    events, _, code = drive(processor, initialize(SHARD, "4950", 0), parents=lambda _shard: lineage)
    assert code is None and events[0] == (
        "initialize",
        SHARD,
        "4950",
        (),
    )  # a checkpointed shard has its state
    assert processor.hash_range == HashRange(0, 2**127 - 1)


def test_a_resuming_shard_whose_lookup_fails_goes_on_without_a_hash_range() -> None:
    def lookup(shard_id: str) -> list[str]:
        raise ConnectionError("kinesis unreachable")

    processor = RangeRecorder()
    events, _, code = drive(processor, initialize(SHARD, "4950", 0), parents=lookup)
    assert code is None and events[0] == ("initialize", SHARD, "4950", ())
    assert processor.hash_range is None


def test_a_failed_parent_lookup_stops_the_process_before_any_record() -> None:
    def lookup(shard_id: str) -> list[str]:
        raise ConnectionError("kinesis unreachable")

    events, _, code = drive(
        FakeShardProcessor(), initialize(SHARD), process_records(record("1")), parents=lookup
    )
    assert code == EXIT_PROCESSING_FAILED
    assert not [e for e in events if e[0] in ("initialize", "process")]


def test_records_are_translated_with_raw_bytes_and_epoch_seconds() -> None:
    fake = FakeShardProcessor(answers=[False])
    drive(
        fake,
        initialize(SHARD),
        process_records(
            record("12", data=b"\x00\xffenc", sub=4, key="meter-9", arrival_ms=1_700_000_000_250)
        ),
    )
    (translated,) = fake.batches[0]
    assert (translated.sequence_number, translated.data, translated.partition_key) == (
        "12",
        b"\x00\xffenc",
        "meter-9",
    )
    assert translated.sub_sequence_number == 4
    assert translated.approximate_arrival_timestamp == pytest.approx(1_700_000_000.25)


def test_stdout_holds_nothing_but_protocol_json() -> None:
    fake = FakeShardProcessor(answers=[True, False], flush_to="8")
    _, stdout, _ = drive(
        fake,
        initialize(SHARD),
        process_records(record("7")),
        checkpoint_ok("7", 0),
        process_records(record("8")),
        {"action": "shutdownRequested"},
        checkpoint_ok("8", 0),
        {"action": "leaseLost"},
    )
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 7
    assert all(set(json.loads(line)) >= {"action"} for line in lines)


_CHILD = """
import sys
from tests.support.processors import FailingSinkProcessor, FakeShardProcessor
from wenu_stream.drivers.kcl.adapter import run_process
fake = FailingSinkProcessor() if sys.argv[1] == "fail" else FakeShardProcessor(answers=[True])
run_process(lambda shard_id: fake)
"""


def _child(mode: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CHILD, mode],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_a_real_child_process_exits_nonzero_on_failure_with_clean_stdout() -> None:
    done = _child("fail", script(initialize(SHARD), process_records(record("9"))))
    assert done.returncode == EXIT_PROCESSING_FAILED
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert lines == [{"action": "status", "responseFor": "initialize"}]
    failure = [json.loads(line) for line in done.stderr.splitlines() if '"process_failed"' in line]
    assert failure and failure[0]["shard_id"] == SHARD


def test_a_real_child_process_serves_until_stdin_closes() -> None:
    done = _child(
        "ok",
        script(
            initialize(SHARD), process_records(record("9")), checkpoint_ok("9", 0), {"action": "leaseLost"}
        ),
    )
    assert done.returncode == 0
    actions = [json.loads(line)["action"] for line in done.stdout.splitlines() if line.strip()]
    assert actions == ["status", "checkpoint", "status", "status"]


def test_the_consumer_stops_at_start_up_on_bad_config_before_reading_stdin() -> None:
    env = {"PATH": "/usr/bin:/bin", "WENU_KINESIS_STRAEM": "x"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "consumers" / "alarms.py")],
        input=script(initialize(SHARD)),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "WENU_KINESIS_STRAEM" in done.stderr


def test_driver_metrics_on_the_kcl_path_count_leases_and_checkpoints_and_time_a_hung_batch() -> None:
    registry = CollectorRegistry()
    ages: list[float | None] = []

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    class Hanging(FakeShardProcessor):
        async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> bool:
            if records and self.batches:  # the second batch hangs a while (a sink that does not answer)
                await asyncio.sleep(1.5)
                ages.append(value("wenu_checkpoint_age_seconds", app="processing", shard=SHARD))
                assert value("wenu_leases_held", app="processing") == 1
            return await super().process(records, millis_behind_latest)

    fake = Hanging()
    _, _, code = drive(
        fake,
        initialize(SHARD),
        process_records(record("1")),
        checkpoint_ok("1", 0),
        process_records(record("2")),
        checkpoint_ok("2", 0),
        {"action": "shutdownRequested"},
        metrics=Metrics.create(registry),
        app="processing",
        tick_s=0.1,
    )
    assert code is None
    assert ages and ages[0] is not None and ages[0] >= 1.0  # refreshed while the callback hung
    assert value("wenu_checkpoints_total", app="processing") == 2
    assert value("wenu_leases_held", app="processing") == 0  # given up at shutdown
    assert value("wenu_checkpoint_age_seconds", app="processing", shard=SHARD) == 0


def test_a_shard_process_publishes_its_readiness_for_the_exporter_while_a_call_hangs() -> None:
    """``wenu_unready_until_seconds``: in the future while a call is in flight past ``stall_s``, 0 once closed."""
    registry, health = CollectorRegistry(), Health(stall_s=0.3)
    seen: list[float | None] = []

    def until() -> float | None:
        return registry.get_sample_value("wenu_unready_until_seconds", {"app": "processing", "shard": SHARD})

    class Hanging(FakeShardProcessor):
        async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> bool:
            if records:
                token = health.calls.start("s3 PutObject")  # as aws.deadlines registers an SDK call
                await asyncio.sleep(1.0)
                seen.append(until())
                health.calls.end(token)
            return await super().process(records, millis_behind_latest)

    drive(
        Hanging(),
        initialize(SHARD),
        process_records(record("1")),
        checkpoint_ok("1", 0),
        {"action": "shutdownRequested"},
        metrics=Metrics.create(registry),
        app="processing",
        tick_s=0.1,
        health=health,
    )
    assert seen and seen[0] is not None and seen[0] > time.time()  # not ready, for a few ticks from now
    assert until() == 0  # closed: nothing left to report


def test_a_shard_process_whose_daemon_is_gone_exits_without_checkpointing(tmp_path: Path) -> None:
    """The daemon's stop grace ran out while a batch hung: its child must not outlive it, still retrying."""
    child = textwrap.dedent("""
        import os, sys, time
        from wenu_stream.drivers.kcl.adapter import _exit_now, watch_parent
        from wenu_stream.log import configure_logging
        configure_logging()
        watch_parent(_exit_now, every_s=0.1)
        open(sys.argv[1], "w").write(str(os.getpid()))
        time.sleep(60)  # a batch that never becomes durable
    """)
    daemon = (
        textwrap.dedent("""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stderr=subprocess.PIPE)
        while not __import__("os").path.exists(sys.argv[2]):
            time.sleep(0.05)
    """)
    )  # starts the child, its stderr a pipe to itself, and exits: the JVM when shutdownGraceMillis runs out
    pid_file = tmp_path / "child.pid"
    subprocess.run([sys.executable, "-c", daemon, child, str(pid_file)], check=True, timeout=60)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid):
        assert time.monotonic() < deadline, "the orphaned shard process is still running"
        time.sleep(0.1)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "zombie"
