"""Pure parts of the operator tools: targets, liveness, shard selection, lag text, markers."""

from __future__ import annotations

import datetime as dt

import pytest

from wenu_stream.aws.state import marker_key
from wenu_stream.cli.checkpoints import describe_lag
from wenu_stream.drivers.native.leases import Lease
from wenu_stream.errors import ConfigError
from wenu_stream.ingest.rebuild import RebuildMarker
from wenu_stream.ops.checkpoints import Target, live_leases, parse_target, select
from wenu_stream.ops.positions import Lag

NOW = dt.datetime(2026, 1, 31, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("kind", "value", "target"),
    [
        ("trim-horizon", None, Target("trim-horizon")),
        ("latest", None, Target("latest")),
        ("sequence", "4960", Target("sequence", "4960")),
        ("timestamp", "2026-01-31T11:00:00Z", Target("timestamp", "2026-01-31T11:00:00+00:00")),
        ("timestamp", "2026-01-31T13:00:00+02:00", Target("timestamp", "2026-01-31T11:00:00+00:00")),
        ("timestamp", "90m", Target("timestamp", "2026-01-31T10:30:00+00:00")),  # relative: 90 minutes ago
        (
            "timestamp",
            "2026-01-31T11:00:00",
            Target("timestamp", "2026-01-31T11:00:00+00:00"),
        ),  # no zone: UTC
    ],
)
def test_targets_parse(kind: str, value: str | None, target: Target) -> None:
    assert parse_target(kind, value, now=NOW) == target


@pytest.mark.parametrize(
    ("kind", "value", "field"),
    [
        ("latest", "x", "--to"),
        ("sequence", None, "--to sequence"),
        ("sequence", "12a", "--to sequence"),
        ("timestamp", "2026-01-31T12:00:01Z", "--to timestamp"),
        ("timestamp", "noon", "--to timestamp"),
        ("back", None, "--to"),
    ],
)
def test_bad_targets_name_the_field(kind: str, value: str | None, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_target(kind, value, now=NOW)
    assert info.value.field == field and info.value.fix


def test_a_moved_or_new_counter_is_live() -> None:
    before = [Lease(lease_key="a", lease_counter=3), Lease(lease_key="b", lease_counter=9)]
    after = [
        Lease(lease_key="a", lease_counter=4),
        Lease(lease_key="b", lease_counter=9),
        Lease(lease_key="c", lease_counter=1),
    ]
    assert live_leases(before, after) == {"a", "c"}


def test_select_keeps_order_and_refuses_unknown_shards() -> None:
    leases = [Lease(lease_key="a"), Lease(lease_key="b")]
    assert [lease.lease_key for lease in select(leases, ["b", "a", "b"])] == ["b", "a"]
    assert select(leases, []) == leases
    with pytest.raises(ConfigError, match="no lease for z"):
        select(leases, ["z"])


def test_lag_text() -> None:
    assert describe_lag(None) == "?"
    assert describe_lag(Lag(millis_behind_latest=0, next_record_age_ms=None)) == "caught up"
    assert (
        describe_lag(
            Lag(millis_behind_latest=1500, next_record_age_ms=2500, records_behind=10_000, capped=True)
        )
        == "oldest 2.5s 1500ms 10000+ rec"
    )


def test_marker_applies_only_at_its_checkpoint_and_has_its_own_key() -> None:
    marker = RebuildMarker(
        app="processing", stream="readings", shard_id="s-1", from_checkpoint="TRIM_HORIZON", generation=2
    )
    assert marker.applies("TRIM_HORIZON") and not marker.applies("4960") and not marker.applies(None)
    key = marker_key("processing", "readings", "s-1")
    assert not key["pk"]["S"].startswith("processing#readings#")  # never read as a shard state
