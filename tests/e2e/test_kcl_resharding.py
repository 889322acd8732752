"""Resharding under the real KCL MultiLangDaemon (both applications) on kinesis-local: a run without it, again.

The scenario of ``tests/integration/test_resharding.py`` (a split, then a merge of
the upper child, with a producer whose shard map went stale), consumed by one
daemon per application instead of the native workers. The daemon starts a child
only after its parents ended and deaggregates (dropping, or leaving us to dead-letter, misrouted aggregates)
itself; our processes find a fresh child's parents and hash range with
ListShards. The reference is the native driver over a stream that never changes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from tests.fixtures.aws import create_stream
from tests.fixtures.kcl import KclDaemon, render_local, start_daemon
from tests.support.resharding import (
    Apps,
    Move,
    expected_notifications,
    reference_run,
    reshard_under_traffic,
    simulation,
    user_records,
    without_misrouted,
)
from wenu_stream.config import Config
from wenu_stream.ops.report import shard_totals, sum_totals

pytestmark = pytest.mark.e2e


def wait_for(
    predicate: Callable[[], bool], what: str, daemons: list[KclDaemon], timeout: float = 180
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        dead = [d for d in daemons if d.crashed()]
        if time.monotonic() > deadline or dead:
            logs = "\n---\n".join(d.tail() for d in (dead or daemons))
            pytest.fail(f"{'a daemon exited' if dead else 'timed out'} waiting for {what}:\n{logs}")
        time.sleep(0.5)


def user_records_done(config: Config) -> int:
    try:
        t = sum_totals(shard_totals(config))
    except Exception:  # noqa: BLE001 - the state table may not answer while the emulator is busy
        return -1
    return t.accepted + t.duplicates + t.stale + sum(without_misrouted(t.rejected).values())


@pytest.mark.slow
def test_kcl_daemons_through_a_split_and_a_merge_have_the_effects_of_a_run_without_resharding(
    use_kinesis_local: str, unique_name: str, tmp_path: Path, kcl_daemons: list[KclDaemon]
) -> None:
    sim = simulation()
    users = user_records(sim)
    reference = reference_run(f"{unique_name}-ref", tmp_path, sim, users)
    ref_done = user_records_done(reference.processing)
    notified = reference.notifications()
    assert notified == expected_notifications(sim)

    create_stream(unique_name, 2)
    run = Apps(unique_name, unique_name, tmp_path, sim, WENU_KINESIS_CHECKPOINT_INTERVAL_S="0.3")
    moto = boto3.client("dynamodb").meta.endpoint_url
    daemons = [
        start_daemon(
            kcl_daemons,
            render_local(
                app,
                tmp_path,
                stream=unique_name,
                application=config.lease_table,
                kinesis_url=use_kinesis_local,
                dynamodb_url=moto,
            ),
            env,
            tmp_path / f"kcl-{app}.log",
        )
        for app, config, env in (
            ("processing", run.processing, run.processing_env),
            ("alarms", run.alarms, run.alarms_env),
        )
    ]

    def reading() -> None:  # the daemon's first shard sync refuses a closed shard (kinesis-local lists them)
        wait_for(
            lambda: all(
                len({e["shard_id"] for e in d.events() if e.get("event") == "shard_initialized"}) == 2
                for d in daemons
            ),
            "both daemons reading both shards",
            kcl_daemons,
        )

    assert reshard_under_traffic(unique_name, users, stale_map=True, reading=reading) > 0

    received: Counter[Move] = Counter()

    def all_notified() -> bool:
        received.update(run.notifications())
        return received == notified and run.pending() == []

    wait_for(lambda: user_records_done(run.processing) == ref_done, "every record's effects", kcl_daemons)
    wait_for(all_notified, "every notification, once", kcl_daemons)
    for daemon in daemons:
        daemon.stop()

    assert received == notified
    ours, theirs = run.effects(), reference.effects()
    assert ours["totals"] == theirs["totals"]
    assert ours["stats"] == theirs["stats"]
    assert ours["staged"] == theirs["staged"]
    inherited = [e for e in daemons[1].events() if e.get("event") == "alarm_shard_inherited"]
    assert {len(e["parents"]) for e in inherited} == {1, 2}, "split children and the merged child took over"
