"""Resharding under traffic on kinesis-local, both applications, native driver: the effects of a run without it.

A simulated fleet (faults, re-sent duplicates, one anomaly per alarm rule type,
KPL aggregates) is put twice: on a reference stream of two shards that never
changes, and on a stream whose first shard is split while both workers consume,
after which the upper child is merged with the second shard. The producer packs
its aggregates (like the KPL, one shard per aggregate) with the shard map it
started with, and puts again what lands on the wrong shard. Totals, Company Stats windows, staged warehouse rows and the
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
    reference_run,
    reshard_under_traffic,
    simulation,
    user_records,
)
from wenu_stream.ops.report import shard_totals, sum_totals

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_a_split_then_a_merge_under_traffic_has_the_effects_of_a_run_without_resharding(
    use_kinesis_local: str, aws_stack: object, unique_name: str, tmp_path: Path
) -> None:
    """The producer keeps the shard map it started with, as a KPL does until a put lands on another shard than
    predicted; it then puts those records again, and consumers drop the misrouted aggregate. (With a fresh map
    nothing is misrouted and the same holds: ``reshard_under_traffic(..., stale_map=False)``.)"""
    sim = simulation()
    users = user_records(sim)
    reference = reference_run(f"{unique_name}-ref", tmp_path, sim, users)

    create_stream(unique_name, 2)
    run = Apps(unique_name, unique_name, tmp_path, sim)
    run.start_native()
    rerouted = reshard_under_traffic(unique_name, users, stale_map=True)
    run.wait()

    assert rerouted > 0 and sum_totals(shard_totals(run.processing)).rejected.get("misrouted", 0) > 0
    assert run.pending() == []
    notified = reference.notifications()
    assert notified == expected_notifications(sim)
    assert run.notifications() == notified
    ours, theirs = run.effects(), reference.effects()
    assert ours["totals"] == theirs["totals"]
    assert ours["stats"] == theirs["stats"]
    assert ours["staged"] == theirs["staged"]
