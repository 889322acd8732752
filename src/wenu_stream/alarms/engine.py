"""Alarm evaluation: one state machine per ``(rule, series)``, pure.

No I/O and no clock: time comes from reading times and from the watermark the
runtime passes to :meth:`AlarmEngine.tick`.

Decisions the spec leaves open:

1. A reading whose time is older than *or equal to* the newest one an instance
   has evaluated is skipped by that instance. Equal times carry no new time
   information, and skipping them makes a re-evaluation of the last reading
   harmless when a state was saved ahead of its checkpoint.
2. Only notifying changes are returned as :class:`Transition`: ``ok`` or
   ``pending`` to ``firing``, and ``firing`` to ``ok``. ``ok`` <-> ``pending``
   changes only the state.
3. ``transition_id`` hashes ``(rule, series, onset, to_state)``. ``onset`` is
   the first reading time of the episode (the start of ``pending`` for a
   threshold; for ``no_data`` the last reading before the silence), so a
   replay produces the same ids.
4. ``Transition.value``: threshold, stuck and no_data report a reading value
   (no_data the last one before the silence), rate_of_change the change per
   minute, consumption the consumption of the window.
5. ``no_data`` fires at ``at = last_t + after_s`` and ``consumption`` resolves
   at ``at = window end``, whatever watermark revealed them, so the live run
   and a replay publish the same message.
"""

from __future__ import annotations

import abc
import hashlib
import math
import operator
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

import msgspec

from wenu_stream.alarms.rules import (
    AlarmRule,
    ConsumptionRule,
    NoDataRule,
    RateOfChangeRule,
    StuckRule,
    ThresholdRule,
)
from wenu_stream.model import SeriesReading
from wenu_stream.timewindows import window_of

OK: Literal["ok"] = "ok"
PENDING: Literal["pending"] = "pending"
FIRING: Literal["firing"] = "firing"
State = Literal["ok", "pending", "firing"]

_NONE: tuple[Transition, ...] = ()


class InstanceState(msgspec.Struct, kw_only=True, array_like=True):
    """The durable state of one alarm instance; mutated in place by evaluation.

    Stored as msgpack (``array_like``: add new fields at the end, with defaults).
    ``version`` grows by one with every change, for conditional writes.
    """

    rule: str
    series: str
    rule_type: str
    company: str = ""
    site: str = ""
    version: int = 0
    state: State = OK
    last_t: int | None = None  # newest reading time evaluated, epoch ms
    last_value: float | None = None
    onset: int | None = None  # first reading time of the current pending/firing episode
    run: int = 0  # stuck: consecutive equal values so far
    window_start: int | None = None  # consumption: current window, epoch ms
    window_end: int | None = None
    consumed: float = 0.0
    generation: int = 0  # the rebuild generation (ingest.rebuild) it was evaluated under
    partition_key: str = ""  # of its series' last reading: which child shard takes it over after a split


class Transition(msgspec.Struct, frozen=True, kw_only=True):
    """A notifying change of an alarm instance: to ``firing`` or back to ``ok``."""

    rule: str
    series: str
    company: str
    site: str
    severity: str
    from_state: State
    to_state: State
    value: float | None
    at: int  # reading time of the change, epoch ms
    onset: int
    transition_id: str


def transition_id(rule: str, series: str, onset: int, to_state: str) -> str:
    """Return the stable id of a transition: 32 hex digits of BLAKE2b."""
    key = f"{rule}\x1f{series}\x1f{onset}\x1f{to_state}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


class Compiled(abc.ABC):
    """A rule with its per-reading constants worked out once (abstract: one subclass per rule type).

    ``timed`` says whether :meth:`deadline` can ever return a time, so the
    shard engine keeps only those instances in its deadline heap.
    """

    __slots__ = ("id", "rule", "severity", "type")
    timed = False

    def __init__(self, rule: AlarmRule) -> None:
        self.rule = rule
        self.id = rule.id
        self.severity = rule.severity
        tag = type(rule).__struct_config__.tag
        assert isinstance(tag, str)  # every rule type has a string tag
        self.type = tag

    @abc.abstractmethod
    def step(self, s: InstanceState, r: SeriesReading) -> tuple[Transition, ...]:
        """Evaluate a reading newer than ``s.last_t`` (the caller checked); every rule type defines it."""

    def deadline(self, s: InstanceState) -> int | None:
        """Reading time at which :meth:`advance` may change ``s``, or None."""
        return None

    def advance(self, s: InstanceState, watermark: int) -> tuple[Transition, ...]:
        """Let time pass up to ``watermark`` without a reading of the series."""
        return _NONE

    def new_state(self, r: SeriesReading) -> InstanceState:
        """Return the state of an instance before its first reading."""
        return InstanceState(
            rule=self.id, series=r.series, rule_type=self.type, company=r.company, site=r.site
        )

    def change(self, s: InstanceState, to: State, value: float | None, at: int) -> tuple[Transition, ...]:
        """Move ``s`` to ``to`` (from/to ``firing``) and return the one notification."""
        onset = at if s.onset is None else s.onset
        out = Transition(
            rule=self.id, series=s.series, company=s.company, site=s.site, severity=self.severity,
            from_state=s.state, to_state=to, value=value, at=at, onset=onset,
            transition_id=transition_id(self.id, s.series, onset, to),
        )  # fmt: skip
        s.state = to
        s.onset = onset if to == FIRING else None
        return (out,)


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}  # fmt: skip


class _Threshold(Compiled):
    __slots__ = ("clear", "cond", "for_ms", "level")

    def __init__(self, rule: ThresholdRule) -> None:
        super().__init__(rule)
        self.cond = _OPS[rule.op]
        self.level = rule.value
        self.clear = rule.clear_level
        self.for_ms = int(rule.for_s * 1000)

    def step(self, s: InstanceState, r: SeriesReading) -> tuple[Transition, ...]:
        v, t = r.value, r.t
        if s.state == FIRING:
            # Still firing while the value stays beyond the hysteresis level.
            return _NONE if self.cond(v, self.clear) else self.change(s, OK, v, t)
        if not self.cond(v, self.level):
            s.state, s.onset = OK, None
            return _NONE
        if s.state == OK:
            s.onset = t
            if self.for_ms <= 0:
                return self.change(s, FIRING, v, t)
            s.state = PENDING
            return _NONE
        assert s.onset is not None  # pending always has an onset
        return self.change(s, FIRING, v, t) if t - s.onset >= self.for_ms else _NONE


class _NoData(Compiled):
    __slots__ = ("after_ms",)
    timed = True

    def __init__(self, rule: NoDataRule) -> None:
        super().__init__(rule)
        self.after_ms = int(rule.after_s * 1000)

    def step(self, s: InstanceState, r: SeriesReading) -> tuple[Transition, ...]:
        return self.change(s, OK, r.value, r.t) if s.state == FIRING else _NONE

    def deadline(self, s: InstanceState) -> int | None:
        if s.state != OK or s.last_t is None:
            return None
        return s.last_t + self.after_ms

    def advance(self, s: InstanceState, watermark: int) -> tuple[Transition, ...]:
        due = self.deadline(s)
        if due is None or watermark < due:
            return _NONE
        s.onset = s.last_t
        s.version += 1
        return self.change(s, FIRING, s.last_value, due)


class _RateOfChange(Compiled):
    __slots__ = ("max_per_ms",)

    def __init__(self, rule: RateOfChangeRule) -> None:
        super().__init__(rule)
        self.max_per_ms = rule.max_abs_delta_per_min / 60_000

    def step(self, s: InstanceState, r: SeriesReading) -> tuple[Transition, ...]:
        if s.last_t is None or s.last_value is None:
            return _NONE
        per_ms = abs(r.value - s.last_value) / (r.t - s.last_t)  # r.t > last_t: checked by the caller
        over = per_ms > self.max_per_ms
        if over == (s.state == FIRING):
            return _NONE
        return self.change(s, FIRING if over else OK, per_ms * 60_000, r.t)


class _Stuck(Compiled):
    __slots__ = ("count",)

    def __init__(self, rule: StuckRule) -> None:
        super().__init__(rule)
        self.count = rule.count

    def step(self, s: InstanceState, r: SeriesReading) -> tuple[Transition, ...]:
        if r.value != s.last_value:
            s.run = 1
            return self.change(s, OK, r.value, r.t) if s.state == FIRING else _NONE
        s.run += 1
        if s.state == FIRING or s.run < self.count:
            return _NONE
        return self.change(s, FIRING, r.value, r.t)


class _Consumption(Compiled):
    __slots__ = ("max", "window")
    timed = True

    def __init__(self, rule: ConsumptionRule) -> None:
        super().__init__(rule)
        self.window = rule.window
        self.max = rule.max

    def step(self, s: InstanceState, r: SeriesReading) -> tuple[Transition, ...]:
        out = _NONE
        if s.window_end is None or r.t >= s.window_end:
            out = self._close(s, s.window_end)
            s.window_start, s.window_end = window_of(r.t, self.window, r.timezone)
            s.consumed = 0.0
        p, q = s.last_value, r.value
        if p is not None:
            s.consumed += q - p if q >= p else q  # a drop means the register restarted from zero
        if s.state == OK and s.consumed > self.max:
            out += self.change(s, FIRING, s.consumed, r.t)
        return out

    def deadline(self, s: InstanceState) -> int | None:
        return s.window_end if s.state == FIRING else None

    def advance(self, s: InstanceState, watermark: int) -> tuple[Transition, ...]:
        if s.state != FIRING or s.window_end is None or watermark < s.window_end:
            return _NONE
        s.version += 1
        return self._close(s, s.window_end)

    def _close(self, s: InstanceState, end: int | None) -> tuple[Transition, ...]:
        if s.state != FIRING or end is None:
            return _NONE
        return self.change(s, OK, s.consumed, end)


@lru_cache(maxsize=4096)
def compile_rule(rule: AlarmRule) -> Compiled:
    """Return the evaluator of ``rule`` (cached; rules are frozen and hashable)."""
    if isinstance(rule, ThresholdRule):
        return _Threshold(rule)
    if isinstance(rule, NoDataRule):
        return _NoData(rule)
    if isinstance(rule, RateOfChangeRule):
        return _RateOfChange(rule)
    if isinstance(rule, StuckRule):
        return _Stuck(rule)
    return _Consumption(rule)


def step(c: Compiled, s: InstanceState, r: SeriesReading) -> tuple[Transition, ...] | None:
    """Evaluate one reading on one instance; return None if the instance skips it.

    The reading is skipped when it is not newer than ``s.last_t``. The caller
    has checked that its value is finite.
    """
    if s.last_t is not None and r.t <= s.last_t:
        return None
    out = c.step(s, r)
    s.last_t = r.t
    s.last_value = r.value
    s.version += 1
    return out


def evaluate(
    rule: AlarmRule, state: InstanceState | None, reading: SeriesReading
) -> tuple[InstanceState, tuple[Transition, ...]]:
    """Evaluate ``reading`` for the instance ``(rule, reading.series)``.

    Args:
        rule: the rule; it must match the reading's series.
        state: the instance state, updated in place; None for a new instance.
        reading: the reading. One not newer than ``state.last_t``, or with a
            non-finite value, is skipped (nothing changes).

    Returns:
        The state and the notifying transitions (usually none, at most two:
        a consumption window that closes and a new one that fires at once).
    """
    c = compile_rule(rule)
    s = c.new_state(reading) if state is None else state
    if not math.isfinite(reading.value):
        return s, _NONE
    return s, step(c, s, reading) or _NONE


def advance(
    rule: AlarmRule, state: InstanceState, watermark_ms: int
) -> tuple[InstanceState, tuple[Transition, ...]]:
    """Let reading time pass to ``watermark_ms`` for an instance that got no reading.

    ``no_data`` fires once ``watermark_ms - last_t >= after_s``; a firing
    ``consumption`` resolves once its window has ended. Other types ignore it.
    """
    return state, compile_rule(rule).advance(state, watermark_ms)


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """The alarms-topic message of a transition, as the spec lays it out."""

    rule: str
    series: str
    company: str
    site: str
    severity: str
    state: State
    value: float | None
    at: int
    transition_id: str


def notification(tr: Transition) -> tuple[bytes, dict[str, str]]:
    """Return the JSON message body and the filterable message attributes of a transition."""
    body = Notification(
        rule=tr.rule, series=tr.series, company=tr.company, site=tr.site, severity=tr.severity,
        state=tr.to_state, value=tr.value, at=tr.at, transition_id=tr.transition_id,
    )  # fmt: skip
    attributes = {"severity": tr.severity, "company": tr.company, "state": tr.to_state}
    return msgspec.json.encode(body), attributes
