"""The alarms application's reading sink: alarm engines per shard, durable state, notifications.

``write_readings`` evaluates in memory; ``flush`` makes it durable in this order:

1. record every new transition in the ledger as pending (before the states:
   a state saved ahead of the checkpoint must never hide an unannounced transition),
2. delete removed instances (before the upserts: a rule whose type changed
   restarts at version 1 under the same key),
3. store changed instance states, fenced by version, and the shard clocks,
4. publish the pending notifications and mark them published (with those
   that another worker was publishing when the shard came here: they are
   offered again every ``RETRY_DEFERRED_MS`` until that worker marked them or
   its claim expired, see ``aws.notifier``).

What a flush did not finish stays buffered, so a retried flush (the processor
retries) carries on; every step is idempotent. A shard's engine is built on
first use from the store (every instance the shard owned, and the clock that
drives ``no_data`` while the shard is idle), then whatever a previous owner
left pending is published (in that order: a transition is recorded before the
state past it is stored, so the ledger holds every one the loaded states
hide, even while the previous owner is still flushing). The instances of a series first seen on the shard
(a shard that moved, a reshard) are fetched before its first reading is evaluated.

Resharding: a child shard that starts without a checkpoint hears ``inherit``
(its parents ended first: both drivers guarantee it) and takes over, before its
first reading, the parents' instances that are its own (after a merge all of
both parents'; after a split those whose series' last partition key hashes into
the child's range), stored again under the child with their version one up at
its first commit; the parents' clocks (the newest watermark, and the idle clock
of the parent that saw the newest reading); and the notifications a parent
recorded and did not publish (claimed like any recovery, so exactly once). So a
series silent since before the reshard still fires ``no_data`` on time, and
nothing a parent recorded is left pending on a shard no one reads.

Rebuild (``ingest.rebuild``): instance states and shard clocks carry the
generation they were computed under; an instance of an older generation than
its shard's starts over at its series' next reading (keeping its version, so
the conditional write replaces the stored state), and the shard's watermark
restarts with the replay. Transitions the rebuild finds again have the same
ids, so the ledger does not publish them twice; transitions it finds anew are
published like live ones (with the reading time they happened at).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec

from wenu_stream.alarms.durable import LastTransition, LedgerEntry, ShardClock
from wenu_stream.alarms.engine import InstanceState, Transition
from wenu_stream.alarms.rules import AlarmRule, matches
from wenu_stream.alarms.shard import AlarmEngine, InstanceKey
from wenu_stream.errors import SinkRejected, StaleAlarmState
from wenu_stream.log import get_logger
from wenu_stream.model import HashRange, SeriesReading, out_of_range
from wenu_stream.ports import AlarmStateStore, Notifier, RulesSource, SinkBase

RETRY_DEFERRED_MS = 2000
_NEVER = -(1 << 62)


class _Shard:
    """One shard's engine and what it has not made durable yet."""

    def __init__(self, engine: AlarmEngine, clock: ShardClock | None, now_ms: Callable[[], int]) -> None:
        self.engine = engine
        self.now_ms = now_ms
        self.deferred: list[LedgerEntry] = []  # ledger entries another worker holds a claim on (aws.notifier)
        self.retry_at = 0
        self.looked_up: set[str] = set()  # series whose stored instances were fetched
        self.upserts: dict[InstanceKey, InstanceState] = {}
        self.removed: set[InstanceKey] = set()
        self.transitions: list[Transition] = []
        self.seen_watermark = clock.seen_watermark if clock else None  # watermark when the last reading came
        self.seen_wall = clock.seen_wall if clock else None  # and the wall time it came, epoch ms
        self.clock_dirty = False

    def defer(self, entries: Sequence[LedgerEntry]) -> None:
        """Offer these ledger entries again in ``RETRY_DEFERRED_MS`` (another worker holds them)."""
        if entries:
            kept = [*self.deferred, *entries]
            self.deferred = list({(e.series, e.sk): e for e in kept}.values())
            self.retry_at = self.now_ms() + RETRY_DEFERRED_MS

    def collect(self) -> None:
        """Move the engine's changes into the unflushed buffers (removals drop earlier upserts)."""
        changes = self.engine.take_changes()
        for key in changes.removed:
            self.upserts.pop(key, None)
            self.removed.add(key)
        for s in changes.upserts:
            self.upserts[(s.rule, s.series)] = s

    def clock(self) -> ShardClock:
        return ShardClock(
            watermark=self.engine.watermark,
            seen_watermark=self.seen_watermark,
            seen_wall=self.seen_wall,
            generation=self.engine.generation,
        )


class AlarmsSink(SinkBase):
    """Reading sink (``ports.ReadingSink``) of the alarms application, shared by a worker's shards."""

    name = "alarms"

    def __init__(
        self,
        state: AlarmStateStore,
        notifier: Notifier,
        *,
        rules: Sequence[AlarmRule] = (),
        rules_source: RulesSource | None = None,
        idle_tick_s: float = 5.0,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._store = state
        self._notifier = notifier
        self._rules: Sequence[AlarmRule] = tuple(rules)
        self._severity = {r.id: r.severity for r in self._rules}
        self._source = rules_source
        self._idle_ms = int(idle_tick_s * 1000)
        self._wall_ms = wall_ms
        self._shards: dict[str, _Shard] = {}
        self._generations: dict[str, int] = {}  # shard -> its rebuild generation (ingest.rebuild)
        self._lock = asyncio.Lock()
        self._log: Any = get_logger("wenu.alarms")

    def set_rules(self, rules: Sequence[AlarmRule]) -> None:
        """Swap the rule set of every shard (a catalog change); takes effect at the next reading."""
        self._rules = tuple(rules)
        self._severity = {r.id: r.severity for r in self._rules}
        for shard in self._shards.values():
            shard.engine.set_rules(self._rules)
            shard.looked_up.clear()  # a new rule may have instances stored by another worker

    async def write_readings(self, shard_id: str, readings: Sequence[SeriesReading]) -> list[Transition]:
        """Evaluate a batch of enriched readings in shard order; return the transitions (published at flush)."""
        for r in readings:  # before any change: the processor isolates the record (ingest.failures)
            refused = out_of_range(r.value, largest=1e125, smallest=1e-129, what="an alarm's last value")
            if refused is not None and math.isfinite(r.value):
                raise SinkRejected(self.name, f"{r.series} at {r.t}: {refused}")
        self._refresh_rules()
        shard = await self._shard(shard_id)
        if await self._look_up(
            shard, readings
        ):  # states another owner stored: what they hide is in the ledger
            shard.defer(await self._notifier.recover(shard_id))
        found = shard.engine.apply(readings)
        shard.transitions.extend(found)
        if readings:
            shard.seen_watermark, shard.seen_wall = shard.engine.watermark, self._wall_ms()
            shard.clock_dirty = True
        return found

    async def idle(self, shard_id: str, now_ms: int) -> list[Transition]:
        """Advance an idle shard's watermark by the wall time elapsed since its last reading.

        Only once the shard has been idle ``idle_tick_s``; the watermark then
        stands at ``watermark at the last reading + wall time since``, so a
        silent series fires ``no_data`` when it would have had the shard kept
        on carrying readings of others.
        """
        shard = await self._shard(shard_id)
        if shard.seen_wall is None or shard.seen_watermark is None:
            if shard.engine.watermark is not None:  # restarted without a clock: count from now
                shard.seen_watermark, shard.seen_wall, shard.clock_dirty = (
                    shard.engine.watermark,
                    now_ms,
                    True,
                )
            return []
        elapsed = now_ms - shard.seen_wall
        if elapsed < self._idle_ms:
            return []
        found = shard.engine.tick(shard.seen_watermark + elapsed)
        shard.transitions.extend(found)
        return found

    async def flush(self) -> None:
        """Make every shard's changes durable and publish their notifications (steps in the module docstring)."""
        async with self._lock:
            for shard_id, shard in list(self._shards.items()):
                try:
                    await self._flush_shard(shard_id, shard)
                except StaleAlarmState:
                    self.release(
                        shard_id
                    )  # our engine is behind the store: reload it if the shard comes back
                    raise

    async def settle(self, shard_id: str) -> None:
        """Write every instance of a shard that stops here to its own item (children of an ended shard, and
        readers, look instances up by item)."""
        if shard_id in self._shards:
            await self.flush()
            await self._store.settle(shard_id, severity=self._severity_of, now_ms=self._wall_ms())

    @property
    def has_pending(self) -> bool:
        """True when a notification waits for the next flush: the processor then commits at once, not on its interval."""
        now = self._wall_ms()
        return any(
            shard.transitions or (shard.deferred and now >= shard.retry_at) for shard in self._shards.values()
        )

    @property
    def waiting(self) -> bool:
        """Notifications another process holds a claim on wait here until it marks them or its claim expires."""
        return any(shard.deferred for shard in self._shards.values())

    async def inherit(self, shard_id: str, parents: Sequence[str], hash_range: HashRange | None) -> None:
        """Take over what the ended parents of a new child shard left (module docstring, resharding)."""
        shard = await self._shard(shard_id)
        adopted: list[InstanceState] = []
        clocks: list[ShardClock] = []
        for parent in parents:
            states, clock = await self._store.load_shard(parent, claim=False)
            clocks += [clock] if clock is not None and clock.generation >= shard.engine.generation else []
            adopted += [
                msgspec.structs.replace(s, version=s.version + 1)  # the child's now: its item moves to it
                for s in states
                if shard.engine.state(s.rule, s.series) is None and _follows(s, len(parents), hash_range)
            ]
        orphans = set(shard.engine.load(adopted, max((c.watermark or _NEVER for c in clocks), default=None)))
        shard.upserts.update(((s.rule, s.series), s) for s in adopted if (s.rule, s.series) not in orphans)
        newest = max(clocks, key=lambda c: c.seen_watermark or _NEVER, default=None)
        if shard.seen_wall is None and newest is not None and newest.seen_wall is not None:
            shard.seen_watermark, shard.seen_wall = newest.seen_watermark, newest.seen_wall
        shard.clock_dirty = True
        for parent in parents:  # what a parent recorded and nobody published: this shard's to publish now
            shard.defer(await self._notifier.recover(parent))
        self._log.info(
            "alarm_shard_inherited",
            shard_id=shard_id,
            parents=list(parents),
            instances=len(adopted) - len(orphans),
            watermark=shard.engine.watermark,
        )

    def rebuild(self, shard_id: str, generation: int) -> None:
        """Set a shard's rebuild generation (before its engine loads): instances evaluated under an older
        generation start over at their series' next reading, and the shard's time restarts with the replay."""
        self._generations[shard_id] = generation

    def release(self, shard_id: str) -> None:
        """Forget a shard's engine (its lease moved): the next use reloads it from the store.

        Unflushed effects are dropped; they replay from the checkpoint on the
        shard's next owner.
        """
        self._shards.pop(shard_id, None)

    async def _flush_shard(self, shard_id: str, shard: _Shard) -> None:
        # Taken together, with no await between: the states and the transitions they produced.
        shard.collect()
        batch = list(shard.transitions)
        pending = await self._notifier.record(shard_id, batch)  # 1.
        if shard.removed:  # 2.
            await self._store.remove(sorted(shard.removed))
            shard.removed.clear()
        saved = bool(shard.upserts)
        if shard.upserts:  # 3.
            last = {(t.rule, t.series): LastTransition(t.transition_id, t.to_state, t.at) for t in batch}
            await self._store.save(
                shard_id,
                list(shard.upserts.values()),
                severity=self._severity_of,
                last=last.get,
                now_ms=self._wall_ms(),
            )
            shard.upserts.clear()
        if shard.clock_dirty or batch or saved:  # the store writes the commit's journal with the clock
            shard.clock_dirty = False  # cleared first: a write_readings during the await sets it again
            try:
                await self._store.save_clock(shard_id, shard.clock())
            except BaseException:
                shard.clock_dirty = True
                raise
        retry = shard.deferred if shard.deferred and self._wall_ms() >= shard.retry_at else []
        left = await self._notifier.publish([*retry, *pending])  # 4.
        if retry or left:
            shard.deferred = [e for e in shard.deferred if e not in retry]
            shard.defer(left)
        del shard.transitions[: len(batch)]  # a concurrent write_readings may have appended more

    async def _shard(self, shard_id: str) -> _Shard:
        shard = self._shards.get(shard_id)
        if shard is None:
            # States before the ledger: a previous owner records a transition before it stores the state
            # past it, so every transition the loaded states hide is pending in the ledger by now.
            states, clock = await self._store.load_shard(shard_id)
            deferred = await self._notifier.recover(shard_id)
            engine = AlarmEngine(self._rules)
            engine.generation = self._generations.get(shard_id, 0)
            if clock is not None and clock.generation < engine.generation:
                clock = None  # kept before a rebuild: the replay's readings set the time again
            orphans = engine.load(states, clock.watermark if clock else None)
            shard = self._shards[shard_id] = _Shard(engine, clock, self._wall_ms)
            shard.defer(deferred)
            self._log.info(
                "alarm_shard_loaded",
                shard_id=shard_id,
                instances=len(engine),
                orphans=len(orphans),
                watermark=engine.watermark,
            )
        return shard

    async def _look_up(self, shard: _Shard, readings: Iterable[SeriesReading]) -> bool:
        """Fetch the stored instances of series this shard has not seen yet, before they are evaluated.

        True if some were found: a previous owner may have recorded (and not yet published) the
        transitions that brought them where they are, after the shard's ledger was first recovered.
        """
        keys: list[InstanceKey] = []
        fresh = {r.series: r for r in readings if r.series not in shard.looked_up}
        for series, r in fresh.items():
            keys.extend(
                (rule.id, series)
                for rule in self._rules_for(r)
                if shard.engine.state(rule.id, series) is None
            )
        found = await self._store.load_instances(keys) if keys else []
        shard.engine.load(found)
        shard.looked_up.update(fresh)  # only once loaded: a failed fetch is tried again on the replay
        return bool(found)

    def _rules_for(self, r: SeriesReading) -> list[AlarmRule]:
        return [rule for rule in self._rules if matches(rule, r)]

    def _refresh_rules(self) -> None:
        if self._source is None:
            return
        rules = self._source()
        if rules is not self._rules and tuple(rules) != self._rules:
            self.set_rules(rules)

    def _severity_of(self, rule_id: str) -> str:
        return self._severity.get(rule_id, "")


def _follows(state: InstanceState, parents: int, hash_range: HashRange | None) -> bool:
    """Does an instance of an ended parent belong to its child? Every one after a merge (the child's range is
    both parents'); after a split, those whose series' last partition key the child's range holds (the other
    child takes the rest; one of unknown key is looked up at its series' next reading instead)."""
    if parents > 1:
        return True
    return hash_range is not None and bool(state.partition_key) and hash_range.holds(state.partition_key)
