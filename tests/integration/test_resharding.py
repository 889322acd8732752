"""Resharding under traffic on kinesis-local, both applications, native driver: the effects of a run without it.

A simulated fleet (faults, re-sent duplicates, one anomaly per alarm rule type,
KPL aggregates) is put twice: on a reference stream of two shards that never
changes, and on a stream whose first shard is split while both workers consume,
after which the upper child is merged with the second shard. The producer packs
its aggregates with the shard map of the moment (like the KPL, one shard per
aggregate). Totals, Company Stats windows, staged warehouse rows and the
notifications (exactly one per expected transition) must equal the reference's,
and no ledger entry may be left pending.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.aws import create_stream
from tests.support.resharding import (
    Apps,
    expected_notifications,
    put,
    reshard_under_traffic,
    simulation,
    user_records,
)
from wenu_stream.ops.report import shard_totals, sum_totals

pytestmark = pytest.mark.integration


@pytest.mark.slow
@pytest.mark.parametrize("stale_map", [False, True], ids=["fresh-map", "stale-map"])
def test_a_split_then_a_merge_under_traffic_has_the_effects_of_a_run_without_resharding(
    use_kinesis_local: str, aws_stack: object, unique_name: str, tmp_path: Path, stale_map: bool
) -> None:
    """stale-map: the producer keeps the shard map it started with, as a KPL does until a put lands on another
    shard than predicted; it then puts those records again, and consumers drop the misrouted aggregate."""
    sim = simulation()
    users = user_records(sim)
    reference_stream = f"{unique_name}-ref"
    create_stream(reference_stream, 2)
    reference = Apps(reference_stream, f"{unique_name}-ref", tmp_path, sim)
    put(reference_stream, users)
    reference.start_native()
    reference.wait()

    create_stream(unique_name, 2)
    run = Apps(unique_name, unique_name, tmp_path, sim)
    run.start_native()
    rerouted = reshard_under_traffic(unique_name, users, stale_map=stale_map)
    run.wait()

    assert bool(rerouted) == stale_map
    assert (sum_totals(shard_totals(run.processing)).misrouted > 0) == stale_map
    assert run.pending() == []
    notified = reference.notifications()
    assert notified == expected_notifications(sim)
    assert run.notifications() == notified
    ours, theirs = run.effects(), reference.effects()
    assert ours["totals"] == theirs["totals"]
    assert ours["stats"] == theirs["stats"]
    assert ours["staged"] == theirs["staged"]
