"""The simulator's meters and faults: realistic, deterministic, and each record's outcome known in advance."""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from datetime import UTC, datetime
from statistics import fmean
from zoneinfo import ZoneInfo

import pytest

from tests.support.records import KEYS, RING
from wenu_stream.devtools.simulate import (
    Fault,
    FaultRates,
    ProducedRecord,
    SimulationConfig,
    UserRecord,
    build_fleet,
    expected_outcomes,
    generate,
)
from wenu_stream.devtools.simulate.meters import load_profile
from wenu_stream.errors import ConfigError
from wenu_stream.records.decoding import Accepted, decode_record
from wenu_stream.records.envelope import parse_envelope

ALL_FAULTS = FaultRates(
    corrupt=0.05,
    unknown_key=0.03,
    tamper=0.04,
    malformed=0.03,
    duplicate=0.05,
    reorder=0.1,
    gap=0.005,
    counter_reset=0.002,
    reorder_bound_s=20,
    gap_s=10,
)


def users(cfg: SimulationConfig) -> list[UserRecord]:
    return [u for record in generate(cfg, KEYS) for u in record.users]


def by_device(records: list[UserRecord]) -> dict[str, list[UserRecord]]:
    out: dict[str, list[UserRecord]] = defaultdict(list)
    for u in records:
        out[u.message.device].append(u)
    return out


def local_hour(t: int, zone: str) -> float:
    moment = datetime.fromtimestamp(t / 1000, UTC).astimezone(ZoneInfo(zone))
    return moment.hour + moment.minute / 60


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    cfg = SimulationConfig(devices=8, duration_s=20, faults=ALL_FAULTS, aggregate=5)
    first = [(r.partition_key, r.data) for r in generate(cfg, KEYS)]
    again = [(r.partition_key, r.data) for r in generate(cfg, KEYS)]
    other = [
        (r.partition_key, r.data) for r in generate(SimulationConfig(devices=8, duration_s=20, seed=1), KEYS)
    ]
    assert first == again
    assert len(first) > 20
    assert {d for _, d in first}.isdisjoint({d for _, d in other})


def test_wire_faults_do_not_change_the_readings() -> None:
    clean = {(u.message.device, u.message.seq): u.message for u in users(SimulationConfig(devices=6))}
    faulty = users(SimulationConfig(devices=6, faults=FaultRates(corrupt=0.3, tamper=0.3, unknown_key=0.2)))
    assert {(u.message.device, u.message.seq): u.message for u in faulty} == clean


def test_messages_are_well_formed_and_numbered_from_one() -> None:
    records = users(SimulationConfig(devices=12, interval_s=2, duration_s=30))
    for device, mine in by_device(records).items():
        assert [u.message.seq for u in mine] == list(range(1, 16)), device
        for u in mine:
            ts = {r.t for r in u.message.readings}
            assert len(ts) == 1
            assert 0 < u.message.sent_at - ts.pop() <= 400
    kinds = Counter(d[:2] for d in by_device(records))
    assert kinds == {"EM": 6, "WM": 3, "TM": 3}


def test_every_record_decodes_to_its_expected_outcome_plain_and_aggregated() -> None:
    for aggregate in (0, 25):
        cfg = SimulationConfig(devices=40, duration_s=30, faults=ALL_FAULTS, aggregate=aggregate, seed=3)
        produced = list(generate(cfg, KEYS))
        seen = Counter()
        for record in produced:
            results = decode_record(record.data, record.partition_key, RING)
            assert len(results) == len(record.users)
            for user, result in zip(record.users, results, strict=True):
                if isinstance(result, Accepted):
                    assert user.expect in ("accepted", "duplicate")
                    assert result.message == user.message
                else:
                    assert result.reason.value == user.expect, (user.fault, result.detail)
                seen[user.expect] += 1
        assert {"accepted", "duplicate", "truncated", "unknown_key", "auth_failed"} <= set(seen)
        assert any(r.aggregated for r in produced) == bool(aggregate)


def test_aggregates_hold_at_most_n_user_records() -> None:
    one_shard = ((0, 2**128 - 1),)
    produced = list(
        generate(SimulationConfig(devices=30, duration_s=10, aggregate=7, shard_ranges=one_shard), KEYS)
    )
    assert max(len(r.users) for r in produced) == 7
    assert sum(len(r.users) for r in produced) == 300
    assert all(r.data.startswith(b"\xf3\x89\x9a\xc2") == r.aggregated for r in produced)


def test_faults_come_at_the_requested_rates() -> None:
    records = users(SimulationConfig(devices=200, duration_s=60, faults=ALL_FAULTS))
    faults = Counter(u.fault for u in records)
    messages = sum(u.fault is not Fault.DUPLICATE for u in records)
    assert messages > 11_000
    for fault, rate in (
        (Fault.CORRUPT, 0.05),
        (Fault.UNKNOWN_KEY, 0.03),
        (Fault.TAMPER, 0.04),
        (Fault.MALFORMED, 0.03),
    ):
        expected = messages * rate
        assert abs(faults[fault] - expected) < 5 * math.sqrt(expected), fault
    clean = sum(u.fault is None for u in records)
    assert abs(faults[Fault.DUPLICATE] - clean * 0.05) < 5 * math.sqrt(clean * 0.05)
    late = sum(u.late for u in records)
    assert abs(late - messages * 0.1) < 5 * math.sqrt(messages * 0.1)


def test_late_messages_stay_within_the_reorder_bound() -> None:
    records = users(
        SimulationConfig(devices=30, duration_s=120, faults=FaultRates(reorder=0.2, reorder_bound_s=15))
    )
    overtaken = 0
    for mine in by_device(records).values():
        newest = 0
        for u in mine:  # emission order
            t = u.message.readings[0].t
            assert newest - t <= 15_000 + 400  # the bound, plus the ordinary send delay
            overtaken += t < newest
            newest = max(newest, t)
    assert overtaken > 50
    assert all(a.emit_ms <= b.emit_ms for a, b in itertools.pairwise(records))


def test_duplicates_repeat_an_earlier_clean_message() -> None:
    records = users(SimulationConfig(devices=20, duration_s=60, faults=FaultRates(duplicate=0.1)))
    first: dict[tuple[str, int], UserRecord] = {}
    replays = resealed = 0
    for u in records:
        key = (u.message.device, u.message.seq)
        if u.fault is Fault.DUPLICATE:
            assert u.expect == "duplicate" and first[key].message == u.message
            replays += u.data == first[key].data
            resealed += u.data != first[key].data
        else:
            assert key not in first and u.expect == "accepted"
            first[key] = u
    assert replays > 10 and resealed > 10


def test_nonces_are_never_reused_under_a_key() -> None:
    records = users(
        SimulationConfig(devices=50, duration_s=30, faults=FaultRates(duplicate=0.2, unknown_key=0.1))
    )
    sealed = {
        u.data for u in records if u.fault in (None, Fault.DUPLICATE, Fault.UNKNOWN_KEY)
    }  # replays once
    nonces = Counter((env.key_id, env.nonce) for env in map(parse_envelope, sealed))
    assert len(nonces) == len(sealed) and max(nonces.values()) == 1


def test_without_a_seed_runs_differ() -> None:
    cfg = SimulationConfig(devices=3, duration_s=3, seed=None)
    assert {r.data for r in generate(cfg, KEYS)}.isdisjoint({r.data for r in generate(cfg, KEYS)})


def test_counters_only_grow_except_at_a_reset() -> None:
    records = users(
        SimulationConfig(devices=20, interval_s=2, duration_s=600, faults=FaultRates(counter_reset=0.01))
    )
    resets = 0
    for device, mine in by_device(records).items():
        if device.startswith("TM"):
            continue
        previous = None
        for u in sorted(mine, key=lambda u: u.message.seq):
            value = u.message.readings[-1].v  # energy_kwh or volume_m3
            if previous is not None:
                assert value >= previous or u.reset, (device, u.message.seq)
                resets += u.reset
            previous = value
    assert resets > 5


def test_gaps_silence_a_device_without_skipping_seq() -> None:
    records = users(SimulationConfig(devices=20, duration_s=300, faults=FaultRates(gap=0.02, gap_s=30)))
    gaps = 0
    for mine in by_device(records).values():
        for before, after in itertools.pairwise(mine):
            assert after.message.seq == before.message.seq + 1
            silence = after.message.readings[0].t - before.message.readings[0].t
            if after.after_gap:
                gaps += 1
                assert silence >= 15_000
            else:
                assert silence == 1_000
    assert gaps > 10


def test_power_and_temperature_follow_the_local_day() -> None:
    fleet = {d.id: d for d in build_fleet(8)}
    records = users(SimulationConfig(devices=8, interval_s=300, duration_s=2 * 86_400))
    day: dict[str, list[float]] = defaultdict(list)
    night: dict[str, list[float]] = defaultdict(list)
    for u in records:
        reading = u.message.readings[0]  # active_power_w, flow_lpm or temperature_c
        hour = local_hour(reading.t, fleet[u.message.device].timezone)
        if 13 <= hour < 17:
            day[reading.ch].append(reading.v)
        elif 1 <= hour < 5:
            night[reading.ch].append(reading.v)
        if reading.ch == "active_power_w":
            assert all(220 <= r.v <= 230 for r in u.message.readings if r.ch == "voltage_v")
    assert fmean(day["active_power_w"]) > 3 * fmean(night["active_power_w"])
    assert fmean(day["temperature_c"]) > fmean(night["temperature_c"]) + 2
    assert load_profile(15.0) == pytest.approx(1.0) and load_profile(3.0) < 0.2


def test_expected_outcomes_add_up() -> None:
    produced: list[ProducedRecord] = list(
        generate(SimulationConfig(devices=50, faults=ALL_FAULTS, aggregate=10), KEYS)
    )
    out = expected_outcomes(produced)
    assert out.records == len(produced) and out.aggregated > 0
    assert out.user_records == out.accepted + out.duplicates + sum(out.rejected.values())
    assert out.messages == out.user_records - out.faults["duplicate"]
    assert out.duplicates == out.faults["duplicate"]
    assert sum(out.rejected.values()) == sum(
        out.faults.get(f, 0) for f in ("corrupt", "unknown_key", "tamper", "malformed")
    )


def test_bad_keys_fail_at_the_call_not_at_the_first_record() -> None:
    with pytest.raises(ConfigError, match="key_ids"):
        generate(SimulationConfig(key_ids=("nope",)), KEYS)
    with pytest.raises(ConfigError, match="unknown_key_id"):
        generate(SimulationConfig(unknown_key_id="k1", faults=FaultRates(unknown_key=0.1)), KEYS)
    with pytest.raises(ConfigError, match="empty"):
        generate(SimulationConfig(), {})
    with pytest.raises(ConfigError, match="invalid"):
        generate(SimulationConfig(), {"k1": b"short"})


def test_aggregates_never_mix_shards() -> None:
    """Like the KPL, an aggregate packs user records of one shard only, so a device always lands on one shard."""
    from wenu_stream.devtools.simulate import SimulationConfig, generate
    from wenu_stream.devtools.simulate.generator import shard_of

    half = 2**127
    ranges = ((0, half - 1), (half, 2**128 - 1))
    cfg = SimulationConfig(
        devices=40, interval_s=1.0, duration_s=20.0, seed=3, aggregate=10, shard_ranges=ranges
    )
    records = list(generate(cfg, {"k": bytes(32)}))
    aggregated = [r for r in records if r.aggregated]
    assert aggregated, "the scenario should aggregate"
    for record in records:
        shard = shard_of(record.partition_key, ranges)
        assert {shard_of(u.partition_key, ranges) for u in record.users} == {shard}
