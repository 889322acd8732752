"""Injected anomalies: a few devices break each alarm rule type of the fleet once, at known times (pure).

With ``SimulationConfig.anomalies`` on, one device per rule type of
``fleet_catalog`` (the first rule of the type whose device no other anomaly
uses) misbehaves from its second measurement round on (round 0 is its
baseline; ``I`` is the interval):

- threshold: the value sits 10 beyond the level for ``for_s`` (rounds
  ``1 .. 1 + ceil(for_s / I)``): pending, then firing; the next normal reading clears it.
- rate_of_change: one reading jumps by three times the allowed change plus 10:
  firing; the next reading (back down) is still a jump; the one after resolves.
- stuck: ``count`` readings repeat a value 0.5 off the baseline: firing at the
  last of them; the next normal reading resolves.
- no_data: the device sends nothing for ``ceil(after_s / I)`` rounds: firing at
  ``last reading + after_s``; its next reading resolves.
- consumption: the counter register jumps by 1.2 x ``max`` (and stays up):
  firing; resolves when the window ends, if a reading of the series comes after
  that within the run. A window ending between the series' last reading and
  ``MARGIN_MS`` after the run would be decided by the consumer's idle clock, so
  that anomaly is left out.

Anomaly devices take no faults, so every transition is known in advance:
``expected_alarms`` lists them with their reading times and transition ids.

The end of a run is a silence too: every series stops when the simulation
does, and a ``no_data`` rule fires on its series once the consumer's clock for
the series' shard passes the last reading plus ``after_s`` (an idle shard's
clock moves on with wall time). Whether that happens depends on how long the
consumer outlives the run, so it is not in ``expected_alarms``: a caller that
knows how far the consumer's clock got asks :func:`silence_after_run`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import msgspec

from wenu_stream.alarms.engine import transition_id
from wenu_stream.alarms.rules import (
    AlarmRule,
    ConsumptionRule,
    NoDataRule,
    RateOfChangeRule,
    StuckRule,
    ThresholdRule,
    parse_rules,
)
from wenu_stream.devtools.simulate.fleet import CHANNELS, Device, alarm_rules, build_fleet, series_id
from wenu_stream.errors import ConfigError
from wenu_stream.records.payload import Reading
from wenu_stream.timewindows import window_of

if TYPE_CHECKING:
    from wenu_stream.devtools.simulate.scenario import SimulationConfig

TYPES: Final = ("threshold", "rate_of_change", "stuck", "no_data", "consumption")
MARGIN_MS: Final = 600_000  # how long after its last record a consumer may keep ticking on wall time


class Anomaly(msgspec.Struct, frozen=True, kw_only=True):
    """One scheduled anomaly: which rule it trips, on which device and channel, over which rounds.

    Attributes:
        kind: The rule type.
        rule: The rule's id; ``severity`` its severity.
        device: Device id; ``ch`` the channel changed; ``series`` its series.
        first: First round (0-based measurement of the device) changed.
        last: Last round changed (for ``consumption``: the jump round; the offset stays).
        amount: The level (threshold), jump (rate_of_change), offset from the baseline (stuck),
            silence in ms (no_data), or what the register gains (consumption).
        timezone: The device's site zone; ``window`` the consumption window.
    """

    kind: str
    rule: str
    severity: str
    device: str
    ch: str
    series: str
    first: int
    last: int
    amount: float
    timezone: str
    window: str = ""


class ExpectedAlarm(msgspec.Struct, frozen=True, kw_only=True):
    """A notification the alarms application must publish, exactly once."""

    rule: str
    series: str
    severity: str
    state: str  # "firing" or "ok"
    at: int  # reading time of the transition, epoch ms
    transition_id: str


def plan(cfg: SimulationConfig, phases: Mapping[str, int]) -> tuple[Anomaly, ...]:
    """Schedule one anomaly per rule type of the fleet's catalog.

    Args:
        cfg: The run (``interval_s``, ``duration_s``, ``start_ms``, ``devices``).
        phases: Each device's offset in the interval, ms (``generator.device_phases``).

    Raises:
        ConfigError: the run is too short for the anomalies at this interval.
    """
    fleet = {d.id: d for d in build_fleet(cfg.devices)}
    rules = parse_rules(alarm_rules(tuple(fleet.values()), cfg.interval_s))
    interval = _interval_ms(cfg)
    chosen: list[Anomaly] = []
    for kind in TYPES:
        used = {a.device for a in chosen}
        for rule in rules:
            target = _target(rule, fleet.values())
            if _kind(rule) == kind and target is not None and target[0].id not in used:
                chosen.append(_schedule(rule, *target, interval))
                break
    _check_fits(cfg, chosen, interval)
    return tuple(a for a in chosen if a.kind != "consumption" or _window_known(cfg, a, phases[a.device]))


def expected_for(cfg: SimulationConfig, phases: Mapping[str, int]) -> list[ExpectedAlarm]:
    """The notifications the anomalies of ``cfg`` must produce, given each device's phase, in reading-time order."""
    out: list[ExpectedAlarm] = []
    for a in plan(cfg, phases):
        out += _expected(cfg, a, phases[a.device])
    return sorted(out, key=lambda e: (e.at, e.rule, e.series))


class Injector:
    """Applies a plan to the readings of its devices, round by round (one instance per run)."""

    def __init__(self, anomalies: Sequence[Anomaly]) -> None:
        self._by_device: dict[str, Anomaly] = {a.device: a for a in anomalies}
        self._baseline: dict[str, float] = {}

    def touches(self, device: str) -> bool:
        """Say whether ``device`` carries an anomaly (it then takes no faults)."""
        return device in self._by_device

    def apply(self, device: str, round_: int, readings: tuple[Reading, ...]) -> tuple[Reading, ...] | None:
        """Return the readings ``device`` sends in round ``round_``, or None when it stays silent."""
        a = self._by_device.get(device)
        if a is None:
            return readings
        if a.kind == "no_data" and a.first <= round_ <= a.last:
            return None
        return tuple(self._change(a, round_, r) if r.ch == a.ch else r for r in readings)

    def _change(self, a: Anomaly, round_: int, r: Reading) -> Reading:
        value = r.v
        if round_ == a.first - 1:
            self._baseline[a.device] = value
        if a.kind == "threshold" and a.first <= round_ <= a.last:
            value = a.amount
        elif a.kind == "rate_of_change" and round_ == a.first:
            value = round(value + a.amount, 2)
        elif a.kind == "stuck":
            held = round(self._baseline[a.device] + a.amount, 2)
            if a.first <= round_ <= a.last:
                value = held
            elif round_ == a.last + 1 and value == held:
                value = round(value + 0.01, 2)  # the reading that resolves must differ
        elif a.kind == "consumption" and round_ >= a.first:
            value = round(value + a.amount, 5)
        return Reading(r.ch, r.t, value)


def silence_after_run(
    rule: AlarmRule, series: str, last_t: int, watermark: int | None
) -> ExpectedAlarm | None:
    """The ``no_data`` notification the end of the run raises on ``series``, if the consumer's clock got there.

    Args:
        rule: A rule watching ``series`` (only ``no_data`` rules fire on silence).
        series: The series.
        last_t: Reading time of the series' last reading, epoch ms.
        watermark: How far the clock of the series' shard got before the consumer stopped, epoch ms
            (None: never ticked).

    Returns:
        The firing at ``last_t + after_s`` (onset: the last reading), or None when the clock stopped short.
    """
    if not isinstance(rule, NoDataRule) or watermark is None:
        return None
    at = last_t + int(rule.after_s * 1000)  # as the engine counts it
    if watermark < at:
        return None
    return ExpectedAlarm(
        rule=rule.id,
        series=series,
        severity=rule.severity,
        state="firing",
        at=at,
        transition_id=transition_id(rule.id, series, last_t, "firing"),
    )


def _interval_ms(cfg: SimulationConfig) -> int:
    return max(1, round(cfg.interval_s * 1000))


def _kind(rule: AlarmRule) -> str:
    tag = type(rule).__struct_config__.tag
    return str(tag)


def _target(rule: AlarmRule, fleet: Any) -> tuple[Device, str, str] | None:
    """The first device and channel the rule watches: ``(device, channel, series)``."""
    for device in fleet:
        for ch, suffix, kind, unit in CHANNELS[device.kind]:
            series = series_id(device, suffix)
            if rule.series == series:
                return device, ch, series
            m = rule.match
            if m is not None and all(
                want in (None, have)
                for want, have in (
                    (m.company, device.company),
                    (m.site, device.site),
                    (m.unit, unit),
                    (m.kind, kind),
                )
            ):
                return device, ch, series
    return None


def _schedule(rule: AlarmRule, device: Device, ch: str, series: str, interval: int) -> Anomaly:
    first = 1
    common: dict[str, Any] = {
        "kind": _kind(rule),
        "rule": rule.id,
        "severity": rule.severity,
        "device": device.id,
        "ch": ch,
        "series": series,
        "first": first,
        "timezone": device.timezone,
    }
    if isinstance(rule, ThresholdRule):
        level = rule.value + (10 if rule.op in (">", ">=") else -10)
        return Anomaly(**common, last=first + math.ceil(rule.for_s * 1000 / interval), amount=level)
    if isinstance(rule, RateOfChangeRule):
        allowed = rule.max_abs_delta_per_min * interval / 60_000  # per reading
        return Anomaly(**common, last=first, amount=math.ceil(3 * allowed + 10))
    if isinstance(rule, StuckRule):
        return Anomaly(**common, last=first + rule.count - 1, amount=0.5)
    if isinstance(rule, NoDataRule):
        after_ms = int(rule.after_s * 1000)  # as the engine counts it
        return Anomaly(**common, last=first + math.ceil(after_ms / interval) - 1, amount=after_ms)
    assert isinstance(rule, ConsumptionRule)
    return Anomaly(**common, last=first, amount=math.ceil(1.2 * rule.max), window=rule.window)


def _resolving_round(a: Anomaly) -> int:
    """The round whose reading resolves the anomaly (consumption: none, its window does)."""
    return {
        "threshold": a.last + 1,
        "rate_of_change": a.first + 2,
        "stuck": a.last + 1,
        "no_data": a.last + 1,
    }.get(a.kind, a.first)


def _check_fits(cfg: SimulationConfig, anomalies: Sequence[Anomaly], interval: int) -> None:
    rounds = max((_resolving_round(a) + 1 for a in anomalies), default=0)
    if rounds * interval > cfg.duration_s * 1000:
        raise ConfigError(
            "--anomalies",
            f"the run is too short: the anomalies need {rounds} readings per device",
            f"simulate at least {rounds * interval / 1000:g} s at this interval, or a shorter interval",
        )


def _times(cfg: SimulationConfig, phase: int) -> list[int]:
    """Measurement times of a device with ``phase`` over the run."""
    interval, end = _interval_ms(cfg), cfg.start_ms + round(cfg.duration_s * 1000)
    return list(range(cfg.start_ms + phase, end, interval))


def _window_known(cfg: SimulationConfig, a: Anomaly, phase: int) -> bool:
    """Whether the run decides the consumption window's end by readings alone."""
    times = _times(cfg, phase)
    _, end = window_of(times[a.first], a.window, a.timezone)
    run_end = cfg.start_ms + round(cfg.duration_s * 1000)
    return end <= times[-1] or end > run_end + MARGIN_MS


def _expected(cfg: SimulationConfig, a: Anomaly, phase: int) -> list[ExpectedAlarm]:
    times = _times(cfg, phase)
    cleared: int | None
    if a.kind == "no_data":
        onset = times[a.first - 1]
        fired, cleared = onset + int(a.amount), times[a.last + 1]
    elif a.kind == "threshold":
        onset, fired, cleared = times[a.first], times[a.last], times[a.last + 1]
    elif a.kind == "rate_of_change":
        onset, fired, cleared = times[a.first], times[a.first], times[a.first + 2]
    elif a.kind == "stuck":
        onset, fired, cleared = times[a.last], times[a.last], times[a.last + 1]
    else:
        onset = fired = times[a.first]
        end = window_of(fired, a.window, a.timezone)[1]
        cleared = end if end <= times[-1] else None
    return [
        ExpectedAlarm(
            rule=a.rule,
            series=a.series,
            severity=a.severity,
            state=state,
            at=at,
            transition_id=transition_id(a.rule, a.series, onset, state),
        )
        for state, at in (("firing", fired), ("ok", cleared))
        if at is not None
    ]
