"""``generate``: a simulation as the Kinesis records a fleet would write, each with its expected outcome.

Pure and deterministic for a seeded config: readings, faults and nonces come
from ``random.Random`` instances derived from the seed (one per concern, so
turning a fault on does not change the readings), never from the global
``random`` or the clock.

How a run unfolds:
1. Every device measures once per ``interval_s``, at its own phase in the interval.
2. Each measurement becomes a ``Message`` sent a little later (``sent_at``); a
   held-back message (``reorder``) or a re-sent one (``duplicate``) is emitted later still.
3. Messages leave in emission order, are sealed (or damaged, per the fault
   drawn), and are optionally packed into KPL aggregates.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Iterable, Iterator, Mapping
from typing import Final

import msgspec

from wenu_stream.devtools.simulate.anomalies import ExpectedAlarm, Injector, expected_for, plan
from wenu_stream.devtools.simulate.faults import (
    ACCEPTED,
    DUPLICATE,
    Fault,
    NonceSource,
    Sealer,
    corrupt,
    malformed_plaintext,
    tamper,
)
from wenu_stream.devtools.simulate.fleet import Device, build_fleet
from wenu_stream.devtools.simulate.meters import HAS_COUNTER, METERS, LocalClock, Meter
from wenu_stream.devtools.simulate.scenario import SimulationConfig
from wenu_stream.errors import ConfigError
from wenu_stream.records.encoding import KEY_SIZE, aggregate
from wenu_stream.records.envelope import is_valid_key_id
from wenu_stream.records.payload import JSON, MSGPACK, Message
from wenu_stream.records.rejections import Reason

MAX_AGGREGATE_BYTES: Final = 1_000_000  # under the 1 MiB record limit, with room for the KPL framing
MAX_BUFFER_MS: Final = (
    500  # simulated ms a user record may wait for company in an aggregate (KPL default: 100)
)
_SEND_DELAY_MS: Final = (20, 400)  # gateway and network delay between measuring and sending


class UserRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One envelope as put (alone or inside an aggregate) and what a consumer must make of it.

    Attributes:
        message: The message meant (for a faulty record, the one that was lost).
        expect: ``"accepted"``, ``"duplicate"`` (accepted, then dropped as a repeat) or a reason code.
        fault: The fault applied, or None.
        late: Held back, so emitted after messages measured later.
        after_gap: First message after the device was silent.
        reset: A counter went back to 0 since the device's previous message.
    """

    partition_key: str
    data: bytes
    message: Message
    key_id: str
    codec: int
    emit_ms: int
    expect: str = ACCEPTED
    fault: Fault | None = None
    late: bool = False
    after_gap: bool = False
    reset: bool = False


class ProducedRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One Kinesis record to put: a plain envelope, or a KPL aggregate of ``users``."""

    partition_key: str
    data: bytes
    emit_ms: int
    users: tuple[UserRecord, ...]
    aggregated: bool = False


class _Device:
    """Mutable per-device state of a run."""

    __slots__ = (
        "codec",
        "device",
        "has_counter",
        "key_id",
        "meter",
        "phase_ms",
        "reset",
        "seq",
        "silent_until",
    )

    def __init__(self, device: Device, meter: Meter, phase_ms: int, codec: int, key_id: str) -> None:
        self.device, self.meter, self.phase_ms, self.codec, self.key_id = (
            device,
            meter,
            phase_ms,
            codec,
            key_id,
        )
        self.has_counter = device.kind in HAS_COUNTER
        self.seq = 0
        self.silent_until = 0
        self.reset = False  # a counter went back to 0 since the last message sent


class _Pending:
    """A message waiting for its emission time; ``data`` is set once sealed (a replay re-sends it)."""

    __slots__ = ("after_gap", "data", "fault", "late", "message", "original", "replay", "reset", "state")

    def __init__(self, state: _Device, message: Message, **flags: object) -> None:
        self.state, self.message, self.data = state, message, b""
        self.fault: Fault | None = None
        self.late = self.after_gap = self.reset = self.replay = False
        self.original: _Pending | None = None
        for name, value in flags.items():
            setattr(self, name, value)


def check_keys(cfg: SimulationConfig, keys: Mapping[str, bytes]) -> tuple[str, ...]:
    """Return the key ids to seal with, or raise ``ConfigError`` naming the problem and the fix."""
    if not keys:
        raise ConfigError("keyring", "the key ring is empty", "give a key-ring file with at least one key")
    for key_id, key in keys.items():
        if not is_valid_key_id(key_id.encode("ascii", "replace")) or len(key) != KEY_SIZE:
            raise ConfigError(
                "keyring",
                f"key {key_id!r} is invalid",
                f"use ids of [A-Za-z0-9._:-] (1..64) and {KEY_SIZE}-byte keys",
            )
    missing = [k for k in cfg.key_ids if k not in keys]
    if missing:
        raise ConfigError("key_ids", f"{missing} not in the key ring", f"use some of {sorted(keys)}")
    if cfg.faults.unknown_key > 0 and (
        cfg.unknown_key_id in keys or not is_valid_key_id(cfg.unknown_key_id.encode("ascii", "replace"))
    ):
        raise ConfigError(
            "unknown_key_id",
            f"{cfg.unknown_key_id!r} is in the key ring or invalid",
            "pick a valid key id that the ring does not hold",
        )
    return cfg.key_ids or tuple(sorted(keys))


def generate(cfg: SimulationConfig, keyring: Mapping[str, bytes]) -> Iterator[ProducedRecord]:
    """Simulate ``cfg`` and return the Kinesis records to put, in emission order.

    Args:
        cfg: The run.
        keyring: Raw 32-byte keys by key id (the consumers' ring).

    Raises:
        ConfigError: at once (not on first iteration) when the keys do not fit ``cfg``.
    """
    key_ids = check_keys(cfg, keyring)
    keys = dict(keyring)
    if cfg.faults.unknown_key > 0:
        keys[cfg.unknown_key_id] = _rng(cfg.seed, "unknown-key").randbytes(KEY_SIZE)
    users = _Run(cfg, key_ids, Sealer(keys, NonceSource(cfg.seed))).user_records()
    if cfg.aggregate:
        return aggregate_users(users, cfg.aggregate, cfg.shard_ranges)
    return (
        ProducedRecord(partition_key=u.partition_key, data=u.data, emit_ms=u.emit_ms, users=(u,))
        for u in users
    )


def _rng(seed: int | None, purpose: str) -> random.Random:
    return random.Random() if seed is None else random.Random(f"{seed}:{purpose}")


class _Run:
    """One simulation: devices measure round by round; a heap releases messages in emission order."""

    def __init__(self, cfg: SimulationConfig, key_ids: tuple[str, ...], sealer: Sealer) -> None:
        self.cfg, self.rates, self.sealer = cfg, cfg.faults, sealer
        self.meter_rng, self.fault_rng = _rng(cfg.seed, "meters"), _rng(cfg.seed, "faults")
        self.interval_ms = max(1, round(cfg.interval_s * 1000))
        self.clock = LocalClock()
        self.heap: list[tuple[int, int, _Pending]] = []
        self.order = 0
        self.devices = [self._device(d, key_ids) for d in build_fleet(cfg.devices)]
        phases = {state.device.id: state.phase_ms for state in self.devices}
        self.anomalies = Injector(plan(cfg, phases)) if cfg.anomalies else None

    def _device(self, device: Device, key_ids: tuple[str, ...]) -> _Device:
        rng = self.meter_rng
        meter = METERS[device.kind](rng)
        codec = MSGPACK if rng.random() < self.cfg.msgpack_share else JSON
        return _Device(
            device, meter, rng.randrange(self.interval_ms), codec, key_ids[device.index % len(key_ids)]
        )

    def user_records(self) -> Iterator[UserRecord]:
        """Yield every user record of the run in emission order."""
        start, end = self.cfg.start_ms, self.cfg.start_ms + round(self.cfg.duration_s * 1000)
        for base in range(start, end, self.interval_ms):
            while self.heap and self.heap[0][0] < base:  # nothing measured from `base` on is sent before it
                yield self._release(*heapq.heappop(self.heap))
            for state in self.devices:
                t = base + state.phase_ms
                if t < end:
                    self._measure(state, t)
        while self.heap:
            yield self._release(*heapq.heappop(self.heap))

    def _measure(self, state: _Device, t: int) -> None:
        rates, rng = self.rates, self.fault_rng
        clean = self.anomalies is not None and self.anomalies.touches(
            state.device.id
        )  # no faults on anomalies
        reset = (
            not clean and state.has_counter and rates.counter_reset > 0 and rng.random() < rates.counter_reset
        )
        hour = self.clock.hour(t, state.device.timezone)
        readings = state.meter.read(t, self.interval_ms / 1000, hour, self.meter_rng, reset)
        state.reset |= reset
        if clean:
            assert self.anomalies is not None
            changed = self.anomalies.apply(
                state.device.id, (t - self.cfg.start_ms) // self.interval_ms, readings
            )
            if changed is None:  # an injected silence (not a gap fault: the tally does not count it)
                self.meter_rng.randint(
                    *_SEND_DELAY_MS
                )  # drawn all the same: other devices' readings stay put
                return
            readings = changed
        if t < state.silent_until:
            return  # the meter keeps measuring (its counters grow) but sends nothing
        after_gap, state.silent_until = state.silent_until > 0, 0
        reset, state.reset = state.reset, False
        state.seq += 1
        sent = t + self.meter_rng.randint(*_SEND_DELAY_MS)
        message = Message(device=state.device.id, seq=state.seq, sent_at=sent, readings=readings)
        pending = _Pending(
            state, message, fault=None if clean else self._wire_fault(), after_gap=after_gap, reset=reset
        )
        emit = sent
        if not clean and rates.reorder > 0 and rng.random() < rates.reorder:
            bound = round(rates.reorder_bound_s * 1000)
            emit, pending.late = t + rng.randint(min(self.interval_ms, bound), bound), True
            emit = max(emit, sent)
        self._push(emit, pending)
        if not clean and pending.fault is None and rates.duplicate > 0 and rng.random() < rates.duplicate:
            again = emit + rng.randint(1, max(1, round(rates.duplicate_delay_s * 1000)))
            self._push(
                again,
                _Pending(state, message, fault=Fault.DUPLICATE, original=pending, replay=rng.random() < 0.5),
            )
        if not clean and rates.gap > 0 and rng.random() < rates.gap:
            state.silent_until = t + round(rates.gap_s * 1000 * rng.uniform(0.5, 1.5))

    def _wire_fault(self) -> Fault | None:
        rates = self.rates
        if not (rates.corrupt or rates.unknown_key or rates.tamper or rates.malformed):
            return None
        u = self.fault_rng.random()
        for fault, rate in (
            (Fault.CORRUPT, rates.corrupt),
            (Fault.UNKNOWN_KEY, rates.unknown_key),
            (Fault.TAMPER, rates.tamper),
            (Fault.MALFORMED, rates.malformed),
        ):
            if u < rate:
                return fault
            u -= rate
        return None

    def _push(self, emit: int, pending: _Pending) -> None:
        self.order += 1
        heapq.heappush(self.heap, (emit, self.order, pending))

    def _release(self, emit: int, _: int, p: _Pending) -> UserRecord:
        state, key_id, expect = p.state, p.state.key_id, ACCEPTED
        if p.fault is Fault.DUPLICATE:
            assert p.original is not None
            data, expect = (
                (p.original.data if p.replay else self.sealer.seal(p.message, state.codec, key_id)),
                DUPLICATE,
            )
        elif p.fault is Fault.UNKNOWN_KEY:
            key_id, expect = self.cfg.unknown_key_id, Reason.UNKNOWN_KEY
            data = self.sealer.seal(p.message, state.codec, key_id)
        elif p.fault is Fault.MALFORMED:
            plaintext, expect = malformed_plaintext(p.message, state.codec, self.fault_rng)
            data = self.sealer.seal_plaintext(plaintext, state.codec, key_id)
        else:
            data = self.sealer.seal(p.message, state.codec, key_id)
            if p.fault is Fault.CORRUPT:
                data, expect = corrupt(data, self.fault_rng)
            elif p.fault is Fault.TAMPER:
                data, expect = tamper(data, self.fault_rng), Reason.AUTH_FAILED
        p.data = data
        return UserRecord(
            partition_key=p.message.device,
            data=data,
            message=p.message,
            key_id=key_id,
            codec=state.codec,
            emit_ms=emit,
            expect=str(expect),
            fault=p.fault,
            late=p.late,
            after_gap=p.after_gap,
            reset=p.reset,
        )


def device_phases(cfg: SimulationConfig) -> dict[str, int]:
    """Each device's measuring offset within the interval, ms, as ``generate`` draws it for ``cfg``."""
    run = _Run(msgspec.structs.replace(cfg, anomalies=False), ("phases",), Sealer({}, NonceSource(cfg.seed)))
    return {state.device.id: state.phase_ms for state in run.devices}


def expected_alarms(cfg: SimulationConfig) -> list[ExpectedAlarm]:
    """The notifications a run of ``cfg`` must produce, in reading-time order (empty without anomalies).

    Raises:
        ValueError: ``cfg`` has no seed (its measuring phases, and so its times, are random).
    """
    if not cfg.anomalies:
        return []
    if cfg.seed is None:
        raise ValueError("expected_alarms needs a seeded SimulationConfig")
    return expected_for(cfg, device_phases(cfg))


def shard_of(partition_key: str, ranges: tuple[tuple[int, int], ...]) -> int | str:
    """Which shard a partition key maps to (MD5 of the key in a shard's hash range); the key itself without ranges."""
    if not ranges:
        return partition_key
    point = int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")
    for index, (low, high) in enumerate(ranges):
        if low <= point <= high:
            return index
    raise ValueError(f"no shard range holds the hash key of {partition_key!r}")


def aggregate_users(
    users: Iterable[UserRecord], per_record: int, ranges: tuple[tuple[int, int], ...] = ()
) -> Iterator[ProducedRecord]:
    """Pack user records bound for the same shard, up to ``per_record`` and ``MAX_AGGREGATE_BYTES``, into KPL records.

    As the KPL does, an aggregate holds only records of one shard, and a record waits at most
    ``MAX_BUFFER_MS`` of simulated time for company. A chunk of one is put plain.
    """
    open_chunks: dict[int | str, tuple[list[UserRecord], int]] = {}
    for user in users:
        for key in [
            k for k, (chunk, _) in open_chunks.items() if user.emit_ms - chunk[0].emit_ms > MAX_BUFFER_MS
        ]:
            yield _pack(open_chunks.pop(key)[0])
        key = shard_of(user.partition_key, ranges)
        chunk, size = open_chunks.get(key, ([], 0))
        cost = len(user.data) + len(user.partition_key) + 16
        if chunk and (len(chunk) >= per_record or size + cost > MAX_AGGREGATE_BYTES):
            yield _pack(chunk)
            chunk, size = [], 0
        chunk.append(user)
        open_chunks[key] = (chunk, size + cost)
    for chunk, _ in open_chunks.values():
        yield _pack(chunk)


def _pack(chunk: list[UserRecord]) -> ProducedRecord:
    first, last = chunk[0], chunk[-1]
    if len(chunk) == 1:
        return ProducedRecord(
            partition_key=first.partition_key, data=first.data, emit_ms=first.emit_ms, users=(first,)
        )
    data = aggregate([(u.partition_key, u.data) for u in chunk])
    return ProducedRecord(
        partition_key=first.partition_key,
        data=data,
        emit_ms=last.emit_ms,
        users=tuple(chunk),
        aggregated=True,
    )
