"""Cost model at fleet scale: worker CPU per reading of both applications, DynamoDB writes and their monthly price.

Run: ``.venv/bin/python bench/fleet.py [--quick] [--devices 2000] [--minutes 16] [--shards 4]``

A realistic fleet: ``--devices`` electricity meters, one message a minute each,
three channels (power and voltage gauges, an energy counter), so three series
per device, spread over sites in three time zones. Messages are sealed like the
meters' (half JSON, half MessagePack) and routed to ``--shards`` shards by the
MD5 of their partition key, as Kinesis does.

Each application runs in this process with its real sinks, built by the
composition root, against the local stack (dynalite for DynamoDB, moto for S3
and SNS) with a DynamoDB meter (``bench/ddb_meter.py``, its own process) in
front of dynalite. The shard processors are fed the records as the native
driver hands them over:

- live: arrivals paced on a simulated clock, one poll per shard every 200 ms
  (what a poll returns is what arrived in those 200 ms), the default commit
  interval (5 s) on the same clock; the first minutes warm the caches up and are
  not measured (``--warm``);
- backlog: the same records already in the stream, pages of up to 2,500
  records per shard (the driver's share of 20,000 per worker on 8 shards is
  2,500; on 4 shards it is 5,000), every shard concurrently, real clocks.

Worker CPU is this process's ``time.process_time``: the emulators and the meter
are other processes, so their CPU is not in it (they limit the wall time). The
driver's GetRecords parsing is not in it either (``bench/driver.py`` measures it
against the bare read loop). The decode floor (AES-GCM + msgspec of the same
records) is measured in the same run.

Prints one table (the issue 16 cost model) and what limited each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from wenu_stream.model import KinesisRecord
from wenu_stream.records.encoding import encode_payload, seal
from wenu_stream.records.envelope import NONCE_SIZE
from wenu_stream.records.payload import JSON, MSGPACK, Message, Reading, StrictMessage
from wenu_stream.timewindows import WIDTHS, window_of, windows_of

KEYS = {"fleet-key": bytes(range(32))}
START_MS = 1_796_025_600_000  # 2026-12-01T09:00:00Z
ZONES = ("Europe/Madrid", "UTC", "America/Santiago")
SITES = 20
CHANNELS = (("active_power_w", "power", "gauge", "W"), ("voltage_v", "voltage", "gauge", "V"),
            ("energy_kwh", "energy", "counter", "kWh"))  # fmt: skip
RULES = [  # four rules per series, none firing on normal readings
    {"type": "threshold", "id": "over", "severity": "critical", "match": {}, "op": ">", "value": 1e9,
     "clear": 9e8, "for_s": 60},
    {"type": "rate_of_change", "id": "jump", "severity": "major", "match": {}, "max_abs_delta_per_min": 1e9},
    {"type": "stuck", "id": "frozen", "severity": "minor", "match": {}, "count": 30},
    {"type": "no_data", "id": "silent", "severity": "warning", "match": {}, "after_s": 900},
]  # fmt: skip
PRICE_WRU = 0.625  # USD per million write request units, on-demand, us-east-1 (list price since 2024-11-01)
PRICE_RRU = 0.125  # USD per million read request units
MONTH_MIN = 30 * 24 * 60
PROFILE: dict[str, Any] = {}  # --profile: a cProfile of each measured span, printed after the table


class Fleet(msgspec.Struct, kw_only=True):
    """The generated traffic: Kinesis records per shard in arrival order, and what the floor needs."""

    devices: int
    minutes: int
    shards: int
    records: list[list[tuple[int, KinesisRecord]]]  # per shard: (arrival ms, record)
    floor: list[tuple[str, int, bytes, bytes, bytes]]  # (key id, codec, header, nonce, sealed) per message
    series: dict[str, tuple[str, str]]  # series -> (device, timezone)


def site_of(d: int) -> tuple[str, str]:
    s = d % SITES
    return f"acme-s{s:02d}", ZONES[s % len(ZONES)]


def catalog(devices: int) -> dict[str, Any]:
    sites: dict[str, dict[str, Any]] = {}
    for d in range(devices):
        site, zone = site_of(d)
        doc = sites.setdefault(site, {"id": site, "name": site, "timezone": zone, "devices": []})
        doc["devices"].append({"id": f"EM-{d:06d}", "channels": [
            {"ch": ch, "series": f"{site}.em-{d:06d}.{suffix}", "kind": kind, "unit": unit, "scale": 1.0,
             "offset": 0.0} for ch, suffix, kind, unit in CHANNELS]})  # fmt: skip
    return {
        "companies": [{"id": "acme", "name": "Acme", "sites": list(sites.values())}],
        "alarm_rules": RULES,
    }


def shard_of(partition_key: str, shards: int) -> int:
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big") * shards >> 128


def build_fleet(devices: int, minutes: int, shards: int, seed: int = 7) -> Fleet:
    """One message a minute per device, at a fixed phase within the minute; arrival 0.3-1.5 s after sending."""
    rng = random.Random(seed)
    phases = [rng.randrange(60_000) for _ in range(devices)]
    energy = [rng.uniform(1_000, 50_000) for _ in range(devices)]
    key_id, key = next(iter(KEYS.items()))
    per_shard: list[list[tuple[int, bytes, str]]] = [[] for _ in range(shards)]
    floor = []
    series: dict[str, tuple[str, str]] = {}
    for d in range(devices):
        site, zone = site_of(d)
        for _, suffix, _, _ in CHANNELS:
            series[f"{site}.em-{d:06d}.{suffix}"] = (f"EM-{d:06d}", zone)
    for minute in range(minutes):
        for d in range(devices):
            sent = START_MS + minute * 60_000 + phases[d]
            energy[d] += rng.uniform(0, 2)
            readings = (Reading("active_power_w", sent - 500, round(rng.uniform(0, 8_000), 1)),
                        Reading("voltage_v", sent - 500, round(rng.uniform(220, 230), 1)),
                        Reading("energy_kwh", sent - 500, round(energy[d], 3)))  # fmt: skip
            device = f"EM-{d:06d}"
            codec = JSON if d % 2 else MSGPACK
            nonce = rng.randbytes(NONCE_SIZE)
            message = Message(device=device, seq=minute + 1, sent_at=sent, readings=readings)
            data = seal(encode_payload(message, codec), key_id=key_id, key=key, codec=codec, nonce=nonce)
            header = data[: 3 + len(key_id)]
            floor.append((key_id, codec, header, nonce, data[len(header) + NONCE_SIZE :]))
            arrival = sent + rng.randrange(300, 1_500)
            per_shard[shard_of(device, shards)].append((arrival, data, device))
    records = []
    for n, items in enumerate(per_shard):
        items.sort(key=lambda x: x[0])
        base = 49_650_000_000_000_000_000_000_000_000_000_000_000_000_000_000 + n * 10**12
        records.append([(a, KinesisRecord(sequence_number=str(base + i), data=data, partition_key=pk,
                                          approximate_arrival_timestamp=a / 1000))
                        for i, (a, data, pk) in enumerate(items)])  # fmt: skip
    return Fleet(devices=devices, minutes=minutes, shards=shards, records=records, floor=floor, series=series)


def decode_floor(fleet: Fleet, rounds: int = 3) -> float:
    """CPU seconds per message of AES-GCM decrypt + msgspec decode (best of ``rounds``)."""
    ciphers = {k: AESGCM(v) for k, v in KEYS.items()}
    decoders = {JSON: msgspec.json.Decoder(StrictMessage).decode,
                MSGPACK: msgspec.msgpack.Decoder(StrictMessage).decode}  # fmt: skip
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for key_id, codec, header, nonce, sealed in fleet.floor:
            decoders[codec](ciphers[key_id].decrypt(nonce, sealed, header))
        best = min(best, time.process_time() - started)
    return best / len(fleet.floor)


# ---- the meter and the applications ------------------------------------------------------------------


class MeterProcess:
    """``bench/ddb_meter.py`` in front of ``upstream``."""

    def __init__(self, upstream: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "ddb_meter.py"), "--upstream", upstream],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{self.proc.stdout.readline().strip()}"

    def take(self) -> dict[str, int]:
        """The counts since the last take, and start over."""
        req = urllib.request.Request(self.url + "/__meter", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return dict(json.loads(resp.read()))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Clock:
    """A settable clock: epoch ms for the applications, seconds for the commit interval."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def ms(self) -> int:
        return self.now_ms

    def mono(self) -> float:
        return self.now_ms / 1000


class Run(msgspec.Struct, kw_only=True):
    """What one measured run did."""

    app: str
    mode: str
    cpu_s: float
    wall_s: float
    records: int
    readings: int
    counts: dict[str, int]
    tables: dict[str, str]
    flushes: int = 0  # commits of the measured span (live)


def make_config(app: str, run_dir: Path, tag: str) -> Any:
    from wenu_stream.config import load_config

    keyring = run_dir / "keys.json"
    keyring.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in KEYS.items()}))
    return load_config({}, {
        "app": app, "keyring.file": str(keyring), "catalog.url": f"sqlite:///{run_dir / 'catalog.db'}",
        "kinesis.stream": "fleet", "log_level": "error", "sinks.bucket": f"fleet-{tag}",
        "sinks.state_table": f"fleet-state-{tag}", "stats.table": f"fleet-stats-{tag}",
        "alarms.state_table": f"fleet-alarms-{tag}", "alarms.transitions_table": f"fleet-ledger-{tag}",
        "alarms.topic_name": f"fleet-{tag}",
    })  # fmt: skip


def prepare(config: Any, devices: int) -> None:
    """Tables, bucket, topic and catalog: deploy-time work, done before anything is measured."""
    from wenu_stream.aws.provision import ensure_alarm_topic, ensure_bucket, ensure_tables
    from wenu_stream.catalog.document import validate
    from wenu_stream.catalog.store import CatalogStore

    ensure_tables(config, {})
    ensure_bucket(config, {})
    ensure_alarm_topic(config, {})
    checked = validate(catalog(devices))
    assert checked.document is not None, checked.problems[:5]
    with CatalogStore(config.catalog.url) as store:
        store.import_document(checked.document)


async def run_live(config: Any, fleet: Fleet, meter: MeterProcess, warm_min: int) -> Run:
    """Paced arrivals on a simulated clock: a poll per shard every 200 ms, commits every 5 s of that clock."""
    from wenu_stream.bootstrap import Runtime
    from wenu_stream.log import configure_logging

    configure_logging("error")
    clock = Clock(START_MS)
    shard_ids = [f"shardId-{n:012d}" for n in range(fleet.shards)]
    async with Runtime(config, clock=clock.ms, monotonic=clock.mono) as rt:
        procs = [rt.processor(s) for s in shard_ids]
        for p, s in zip(procs, shard_ids, strict=True):
            await p.initialize(s, None, [])
        cursor = [0] * fleet.shards
        end = (
            START_MS + fleet.minutes * 60_000 + 8_000
        )  # the last arrivals, then one commit interval of polls
        measure_from = START_MS + warm_min * 60_000
        measuring = False
        cpu = wall = 0.0
        records = commits = 0
        for now in range(START_MS + 200, end, 200):
            if not measuring and now >= measure_from:
                meter.take()
                cpu, wall, measuring = time.process_time(), time.perf_counter(), True
                profiler = _profile_start()
            clock.now_ms = now
            batches = []
            for n, items in enumerate(fleet.records):
                i = cursor[n]
                while cursor[n] < len(items) and items[cursor[n]][0] < now:
                    cursor[n] += 1
                batches.append([r for _, r in items[i : cursor[n]]])
            done = await asyncio.gather(*(p.process(b, 0) for p, b in zip(procs, batches, strict=True)))
            if measuring:
                records += sum(len(b) for b in batches)
                commits += sum(done)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        _profile_stop(profiler, f"{config.app} live")
        counts = meter.take()
        for p in procs:  # a graceful stop (settles what was deferred): once per deploy, not measured
            await p.flush()
    return Run(app=config.app, mode="live", cpu_s=cpu, wall_s=wall, records=records, readings=3 * records,
               counts=counts, tables=tables_of(config), flushes=commits)  # fmt: skip


async def run_backlog(config: Any, fleet: Fleet, meter: MeterProcess, page: int = 2_500) -> Run:
    """The records already in the stream: pages of ``page`` records per shard, every shard at once, real clocks."""
    from wenu_stream.bootstrap import Runtime
    from wenu_stream.log import configure_logging

    configure_logging("error")
    shard_ids = [f"shardId-{n:012d}" for n in range(fleet.shards)]
    async with Runtime(config) as rt:
        procs = [rt.processor(s) for s in shard_ids]
        for p, s in zip(procs, shard_ids, strict=True):
            await p.initialize(s, None, [])
        meter.take()
        cpu, wall = time.process_time(), time.perf_counter()
        profiler = _profile_start()

        async def consume(p: Any, items: list[tuple[int, KinesisRecord]]) -> None:
            for i in range(0, len(items), page):
                await p.process([r for _, r in items[i : i + page]], 1_000)
            await p._commit()  # the last commit, without the graceful stop's settling

        await asyncio.gather(*(consume(p, items) for p, items in zip(procs, fleet.records, strict=True)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        _profile_stop(profiler, f"{config.app} backlog")
        counts = meter.take()
        for p in procs:  # a graceful stop: not measured
            await p.flush()
    records = sum(len(items) for items in fleet.records)
    return Run(app=config.app, mode="backlog", cpu_s=cpu, wall_s=wall, records=records, readings=3 * records,
               counts=counts, tables=tables_of(config))  # fmt: skip


def _profile_start() -> Any:
    if not PROFILE.get("on"):
        return None
    import cProfile

    profiler = cProfile.Profile(time.process_time)  # CPU, not wall: waiting on the emulators is not cost
    profiler.enable()
    return profiler


def _profile_stop(profiler: Any, label: str) -> None:
    if profiler is None:
        return
    import io
    import pstats

    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
    PROFILE[label] = out.getvalue()


@contextlib.contextmanager
def sdk_client(on: bool) -> Any:
    """With ``on``, the stores get the plain aiobotocore client instead of the hand-signed one."""
    from wenu_stream.bootstrap import Runtime

    if not on:
        yield
        return
    saved = Runtime.dynamodb
    Runtime.dynamodb = lambda self: self.client("dynamodb")  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Runtime.dynamodb = saved  # type: ignore[method-assign]


def tables_of(config: Any) -> dict[str, str]:
    return {"stats": config.stats.table, "alarm state": config.alarms.state_table,
            "ledger": config.alarms.transitions_table, "shard state": config.sinks.state_table}  # fmt: skip


# ---- theoretical minimum --------------------------------------------------------------------------------


def minimum_writes(fleet: Fleet, warm_min: int, flush_s: float = 5.0) -> tuple[float, float]:
    """Stats writes per 1,000 readings of the measured live span: (one per series and window touched per
    flush; one per series touched per flush plus one per window that closed)."""
    touched_windows = touched_series = closed = 0
    readings = 0
    start, end = START_MS + warm_min * 60_000, START_MS + fleet.minutes * 60_000
    flush_ms = int(flush_s * 1000)
    buckets: dict[int, set[str]] = {}
    for items in fleet.records:
        for arrival, r in items:
            if start <= arrival < end:
                buckets.setdefault(arrival // flush_ms, set()).add(r.partition_key)
                readings += 3
    zones = dict(fleet.series.values())
    for devices in buckets.values():
        touched_series += 3 * len(devices)
        touched_windows += 3 * len(devices) * len(WIDTHS)
    for zone in set(zones.values()):  # windows that ended in the span, per series of that zone
        n_series = 3 * sum(1 for z in zones.values() if z == zone)
        ends = set()
        for t in range(start, end, 60_000):
            for width, w_start in windows_of(t, zone):
                w_end = window_of(w_start, width, zone)[1]
                if start < w_end <= end:
                    ends.add((width, w_start))
        closed += n_series * len(ends)
    k = readings / 1000
    return touched_windows / k, (touched_series + closed) / k


# ---- output --------------------------------------------------------------------------------------------


def writes(run: Run, table: str) -> tuple[float, float]:
    k = run.readings / 1000
    name = run.tables[table]
    return run.counts.get(f"write requests {name}", 0) / k, run.counts.get(f"WCU {name}", 0) / k


def monthly(wcu_per_k: float, devices: int) -> float:
    readings = devices * 3 * MONTH_MIN
    return readings / 1000 * wcu_per_k * PRICE_WRU / 1e6


def report(runs: list[Run], floor_s: float, fleet: Fleet, minimum: tuple[float, float], args: Any) -> None:
    print(f"\nfleet: {fleet.devices:,} meters x 3 channels, 1 message/min, {fleet.shards} shards; "
          f"{fleet.minutes} simulated minutes ({args.warm} warm-up, not measured, in live runs)")  # fmt: skip
    floor_reading = floor_s / 3
    print(f"decode floor (AES-GCM + msgspec, same messages): {floor_s * 1e6:.1f} us/record, "
          f"{floor_reading * 1e6:.1f} us/reading")  # fmt: skip
    print(f"\n{'app':<11}{'mode':<11}{'CPU-s/100k rd':>14}{'CPU-s/100k rec':>15}{'ms/reading':>11}"
          f"{'x floor':>8}{'meters/vCPU':>12}{'wall s':>8}")  # fmt: skip
    for run in runs:
        per_reading = run.cpu_s / run.readings
        meters = 60 / (per_reading * 3)  # one message (3 readings) per meter per minute
        print(
            f"{run.app:<11}{run.mode:<11}{per_reading * 1e5:>14.1f}{run.cpu_s / run.records * 1e5:>15.1f}"
            f"{per_reading * 1e3:>11.3f}{per_reading / floor_reading:>8.0f}{meters:>12,.0f}{run.wall_s:>8.1f}"
        )
    print("\nDynamoDB writes per 1,000 readings (requests / WCU, counted by bench/ddb_meter.py)")
    print(
        f"{'app':<11}{'mode':<11}{'stats':>14}{'alarm state':>14}{'ledger':>12}{'shard state':>13}{'total':>14}"
    )
    for run in runs:
        cols = [writes(run, t) for t in ("stats", "alarm state", "ledger", "shard state")]
        total = (sum(c[0] for c in cols), sum(c[1] for c in cols))
        print(f"{run.app:<11}{run.mode:<11}" + "".join(f"{r:>8.0f}/{w:<5.0f}" for r, w in cols[:1])
              + "".join(f"{r:>8.0f}/{w:<5.0f}" for r, w in cols[1:2]) + "".join(f"{r:>6.0f}/{w:<5.0f}" for r, w in cols[2:3])
              + "".join(f"{r:>7.0f}/{w:<5.0f}" for r, w in cols[3:]) + f"{total[0]:>8.0f}/{total[1]:<5.0f}")  # fmt: skip
    print(f"stats minimum (live, 5 s flushes): {minimum[0]:.0f}/1k with one write per series and window per flush; "
          f"{minimum[1]:.0f}/1k with one per series per flush and each closed window once")  # fmt: skip
    print(f"\nmonthly DynamoDB on-demand writes at ${PRICE_WRU}/million WRU (us-east-1 list price), live:")
    for run in (r for r in runs if r.mode == "live"):
        total = sum(writes(run, t)[1] for t in ("stats", "alarm state", "ledger", "shard state"))
        print(f"  {run.app:<11} {total:>7.0f} WCU/1k readings: 2,000 devices ${monthly(total, 2_000):>9,.0f}/month, "
              f"20,000 devices ${monthly(total, 20_000):>10,.0f}/month")  # fmt: skip
    print(
        "\nlimits: worker CPU is this process only (emulators and meter excluded); wall time is bound by "
        "dynalite's and moto's own CPU on this shared 2-core machine, so wall s is not a capacity figure. "
        "A graceful stop (settling deferred windows and alarm instances) is not in the figures: it happens once "
        "per deploy. A backlog's first commit on each shard writes its alarm instances to their own items "
        "(taking the shard over), paid over fewer readings the shorter the backlog. The driver's GetRecords "
        "parsing is not in it: bench/driver.py measures the driver against the bare read loop."
    )


async def main_async(args: argparse.Namespace) -> None:
    from wenu_stream.devtools.emulator import StackSpec, start_stack, stop_stack

    started = time.perf_counter()
    fleet = build_fleet(args.devices, args.minutes, args.shards)
    print(f"built {sum(len(r) for r in fleet.records):,} records in {time.perf_counter() - started:.1f} s",
          flush=True)  # fmt: skip
    floor_s = decode_floor(fleet)
    minimum = minimum_writes(fleet, args.warm)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    stack = start_stack(StackSpec(run_dir=str(run_dir / "stack")))
    meter = MeterProcess(stack.dynamodb_url)
    os.environ.update(stack.env() | {"AWS_ENDPOINT_URL_DYNAMODB": meter.url})
    runs: list[Run] = []
    try:
        cases = [(app, mode, False) for app in args.apps for mode in args.modes]
        if args.sdk_too:
            cases += [(app, "live", True) for app in args.apps if "live" in args.modes]
        for app, mode, sdk in cases:
            tag = f"{app[:4]}-{mode}-{time.time_ns() % 10**9}"
            folder = run_dir / tag
            folder.mkdir()
            config = make_config(app, folder, tag)
            prepare(config, args.devices)
            with sdk_client(sdk):
                if mode == "live":
                    run = await run_live(config, fleet, meter, args.warm)
                else:
                    run = await run_backlog(config, fleet, meter)
            run.mode += " (SDK)" if sdk else ""
            runs.append(run)
            print(f"  {app} {mode}: {run.cpu_s:.1f} CPU-s for {run.readings:,} readings, "
                      f"{run.wall_s:.1f} s wall", flush=True)  # fmt: skip
    finally:
        meter.close()
        stop_stack(stack)
    report(runs, floor_s, fleet, minimum, args)
    for label, text in PROFILE.items():
        if label != "on":
            print(f"\n--- cProfile of {label} (tottime; the profiler's own overhead inflates totals) ---")
            print("\n".join(line for line in text.splitlines() if line.strip())[:6000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 meters, 6 minutes (development)")
    parser.add_argument("--devices", type=int, default=2_000)
    parser.add_argument("--minutes", type=int, default=18, help="simulated minutes of traffic")
    parser.add_argument("--warm", type=int, default=3, help="live: minutes not measured at the start")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--apps", nargs="+", default=["processing", "alarms"])
    parser.add_argument("--modes", nargs="+", default=["live", "backlog"])
    parser.add_argument("--profile", action="store_true", help="print a cProfile of every measured span")
    parser.add_argument(
        "--sdk-too",
        action="store_true",
        help="also run each live case with the stores on the plain SDK client (the lean client's gain)",
    )
    args = parser.parse_args()
    PROFILE["on"] = args.profile
    if args.quick:
        args.devices, args.minutes, args.warm = (
            min(args.devices, 500),
            min(args.minutes, 6),
            min(args.warm, 2),
        )
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
