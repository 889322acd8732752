"""The alarm instances of one shard: routing, watermark, durable-state export (pure).

:class:`AlarmEngine` owns every ``(rule, series)`` instance of a shard. The
runtime feeds it readings in shard order, ticks it while the shard is idle,
and drains the changed states to durable storage before it checkpoints.
"""

from __future__ import annotations

import copy
import heapq
import math
from collections.abc import Iterable

import msgspec

from wenu_stream.alarms.engine import Compiled, InstanceState, Transition, compile_rule
from wenu_stream.alarms.rules import AlarmRule, matches
from wenu_stream.model import SeriesReading

InstanceKey = tuple[str, str]  # (rule id, series)

_NEVER = -(1 << 62)


class StateChanges(msgspec.Struct, frozen=True):
    """What changed since the last drain: states to store and instances to delete."""

    upserts: list[InstanceState]
    removed: list[InstanceKey]
    watermark: int | None


class _Slot:
    """One instance: its compiled rule and its state (None until its first reading)."""

    __slots__ = ("c", "key", "s", "scheduled")

    def __init__(self, c: Compiled, key: InstanceKey, s: InstanceState | None = None) -> None:
        self.c = c
        self.key = key
        self.s = s
        self.scheduled = False


class AlarmEngine:
    """Evaluates readings of one shard against the catalog's alarm rules.

    Time only moves through reading times and :meth:`tick`; the watermark is
    the newest reading time (or ticked time) seen on the shard. Instances whose
    state can change without a reading (``no_data``, a firing ``consumption``)
    sit in a deadline heap, so a watermark step costs nothing unless one is due.
    """

    def __init__(self, rules: Iterable[AlarmRule] = ()) -> None:
        self._rules: list[Compiled] = []
        self._instances: dict[InstanceKey, _Slot] = {}
        self._by_series: dict[str, list[_Slot]] = {}
        self._due: list[tuple[int, InstanceKey]] = []
        self._dirty: set[_Slot] = set()
        self._removed: set[InstanceKey] = set()
        self._wm = _NEVER
        self.generation = 0  # the shard's rebuild generation (ingest.rebuild); set before load
        self.set_rules(rules)

    @property
    def watermark(self) -> int | None:
        """The newest reading (or ticked) time seen, epoch ms; None before any."""
        return None if self._wm == _NEVER else self._wm

    def __len__(self) -> int:
        return len(self._instances)

    def state(self, rule: str, series: str) -> InstanceState | None:
        """Return the live state of an instance (not a copy), or None."""
        slot = self._instances.get((rule, series))
        return None if slot is None else slot.s

    def apply(self, readings: Iterable[SeriesReading]) -> list[Transition]:
        """Evaluate readings in shard order and return the notifying transitions in order.

        For each reading: 1. the watermark moves to its time and due
        ``no_data``/``consumption`` instances change; 2. every instance of its
        series evaluates it, unless it is not newer than the instance's last one.
        """
        out: list[Transition] = []
        for r in readings:
            if r.t > self._wm:
                self._wm = r.t
                if self._due and self._due[0][0] <= r.t:
                    self._run_due(out)
            if not math.isfinite(r.value):
                continue
            slots = self._by_series.get(r.series)
            for slot in self._bind(r) if slots is None else slots:
                self._step(slot, r, out)
        return out

    def tick(self, watermark_ms: int) -> list[Transition]:
        """Move the watermark forward (never back) without a reading and return what fired."""
        out: list[Transition] = []
        if watermark_ms > self._wm:
            self._wm = watermark_ms
            self._run_due(out)
        return out

    def set_rules(self, rules: Iterable[AlarmRule]) -> None:
        """Swap the rule set: instances of removed rules, or of a rule whose type changed, are dropped.

        Kept instances evaluate under the new parameters from their next
        reading; instances of a rule that no longer selects their series are
        dropped at that series' next reading. Dropping publishes nothing.

        Raises:
            ValueError: two rules share an id (catalog import refuses that).
        """
        compiled: dict[str, Compiled] = {}
        for rule in rules:
            if rule.id in compiled:
                raise ValueError(f"duplicate alarm rule id {rule.id!r}")
            compiled[rule.id] = compile_rule(rule)
        for key, slot in list(self._instances.items()):
            c = compiled.get(key[0])
            if c is None or c.type != slot.c.type:
                self._drop(key)
            else:
                slot.c = c
        self._rules = list(compiled.values())
        self._by_series.clear()

    def load(self, states: Iterable[InstanceState], watermark: int | None = None) -> list[InstanceKey]:
        """Restore stored states (at start, before :meth:`apply`).

        Returns:
            Keys of states that no current rule owns; they are also reported
            as ``removed`` by the next :meth:`take_changes`.
        """
        by_id = {c.id: c for c in self._rules}
        orphans: list[InstanceKey] = []
        for s in states:
            key = (s.rule, s.series)
            c = by_id.get(s.rule)
            if c is None or c.type != s.rule_type:
                orphans.append(key)
                self._removed.add(key)
                continue
            slot = self._instances[key] = _Slot(c, key, s)
            self._schedule(slot)
            if s.last_t is not None and s.last_t > self._wm and s.generation >= self.generation:
                self._wm = s.last_t  # (a state of an older generation restarts: its time does not count)
        if watermark is not None and watermark > self._wm:
            self._wm = watermark
        self._by_series.clear()
        return orphans

    def states(self) -> list[InstanceState]:
        """Return copies of every instance state, for a whole-shard snapshot."""
        found = [copy.copy(slot.s) for slot in self._instances.values() if slot.s is not None]
        found.sort(key=lambda s: (s.rule, s.series))
        return found

    def take_changes(self) -> StateChanges:
        """Return copies of the states changed since the last call, and the dropped keys.

        A store applies ``removed`` before ``upserts``: a rule whose type
        changed drops its instances and starts new ones under the same keys,
        at version 1.
        """
        upserts = [copy.copy(slot.s) for slot in self._dirty if slot.s is not None]
        upserts.sort(key=lambda s: (s.rule, s.series))
        removed = sorted(self._removed)
        self._dirty.clear()
        self._removed.clear()
        return StateChanges(upserts=upserts, removed=removed, watermark=self.watermark)

    def _step(self, slot: _Slot, r: SeriesReading, out: list[Transition]) -> None:
        # engine.step inlined: this runs once per reading and instance.
        s = slot.s
        if s is None or s.generation < self.generation:  # new, or evaluated before a rebuild: start over
            version = 0 if s is None else s.version  # versions only grow: conditional writes compare them
            s = slot.s = slot.c.new_state(r)
            s.version, s.generation = version, self.generation
            slot.scheduled = False  # a deadline pushed for the old state is stale (advance checks its own)
        elif s.generation > self.generation or (s.last_t is not None and r.t <= s.last_t):
            return  # not newer than what this instance has evaluated (or rebuilt since this worker started): skipped
        found = slot.c.step(s, r)
        if r.partition_key:
            s.partition_key = r.partition_key
        s.last_t = r.t
        s.last_value = r.value
        s.version += 1
        self._dirty.add(slot)
        if found:
            out.extend(found)
        if slot.c.timed and not slot.scheduled:
            self._schedule(slot)

    def _schedule(self, slot: _Slot) -> None:
        if slot.s is None:
            return
        due = slot.c.deadline(slot.s)
        if due is not None:
            heapq.heappush(self._due, (due, slot.key))
            slot.scheduled = True

    def _run_due(self, out: list[Transition]) -> None:
        # Entries are lazy: a deadline may have moved on since it was pushed, so
        # each popped entry is checked against the instance's current deadline.
        while self._due and self._due[0][0] <= self._wm:
            _, key = heapq.heappop(self._due)
            slot = self._instances.get(key)
            if slot is None or slot.s is None:
                continue
            slot.scheduled = False
            found = slot.c.advance(slot.s, self._wm)
            if found:
                out.extend(found)
                self._dirty.add(slot)
            self._schedule(slot)

    def _bind(self, r: SeriesReading) -> list[_Slot]:
        """Work out (once per series and rule set) which instances watch ``r.series``."""
        slots: list[_Slot] = []
        for c in self._rules:
            key = (c.id, r.series)
            if not matches(c.rule, r):
                if key in self._instances:
                    self._drop(key)
                continue
            slot = self._instances.get(key)
            if slot is None:
                slot = self._instances[key] = _Slot(c, key)
            slots.append(slot)
        self._by_series[r.series] = slots
        return slots

    def _drop(self, key: InstanceKey) -> None:
        slot = self._instances.pop(key)
        self._dirty.discard(slot)
        if slot.s is not None:
            self._removed.add(key)
