"""Benchmark: alarm rule evaluation per reading with 10,000 live instances, against the decode floor.

Run: ``.venv/bin/python bench/alarms.py [--series 2500] [--readings 100000] [--rounds 5]``

In one process, best of several rounds:
- alarms: ``AlarmEngine.apply`` over batches of 500 enriched readings spread over
  ``--series`` series, each watched by 4 rules (threshold with ``for_s``,
  rate_of_change, stuck, no_data), so ``4 * series`` instances are live
  (10,000 by default), plus ``take_changes`` every 10 batches as the sink does at flush;
- floor: AES-GCM decrypt + msgspec decode of the same number of user records
  (``bench/decode.py``'s record builder), per record and per reading.
Prints the costs and the ratio alarms-per-reading / floor-per-reading.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).parent))
from decode import KEYS, best, build  # bench/decode.py: the floor's record builder

from wenu_stream.alarms.rules import parse_rules
from wenu_stream.alarms.shard import AlarmEngine
from wenu_stream.model import SeriesReading
from wenu_stream.records.payload import JSON, MSGPACK, Message

T0 = 1_764_300_000_000
RULES = parse_rules([
    {"type": "threshold", "id": "hot", "severity": "critical", "match": {"company": "acme"}, "op": ">",
     "value": 45_000, "clear": 40_000, "for_s": 60},
    {"type": "rate_of_change", "id": "jump", "severity": "major", "match": {"company": "acme"},
     "max_abs_delta_per_min": 30_000},
    {"type": "stuck", "id": "frozen", "severity": "minor", "match": {"company": "acme"}, "count": 5},
    {"type": "no_data", "id": "silent", "severity": "warning", "match": {"company": "acme"}, "after_s": 900},
])  # fmt: skip


def readings(series: int, count: int, rng: random.Random) -> list[SeriesReading]:
    """``count`` readings round-robin over ``series`` series, one per series every 15 s of reading time."""
    out = []
    for i in range(count):
        s = i % series
        value = 48_000.0 if rng.random() < 0.01 else round(20_000 + rng.gauss(0, 500), 1)  # rare spikes
        out.append(SeriesReading(series=f"S-{s:05d}", company="acme", site="hq", timezone="UTC", kind="gauge",
                                 unit="W", device=f"EM-{s:05d}", ch="p", seq=i // series, index=0,
                                 t=T0 + (i // series) * 15_000 + s, value=value, raw_value=value))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2_500)
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(7)
    warm = readings(args.series, args.series, rng)  # one reading per series: every instance exists
    stream = readings(args.series, args.series + args.readings, rng)[args.series :]
    batches = [stream[i : i + args.batch] for i in range(0, len(stream), args.batch)]

    def run_alarms() -> tuple[float, int]:
        engine = AlarmEngine(RULES)
        engine.apply(warm)
        engine.take_changes()
        assert len(engine) == 4 * args.series
        fired = 0
        started = time.perf_counter()
        for i, batch in enumerate(batches):
            fired += len(engine.apply(batch))
            if i % 10 == 9:  # the sink drains changed states at flush, every few batches
                engine.take_changes()
        return time.perf_counter() - started, fired

    _, floor_inputs = build(args.readings // 3, random.Random(7))  # 2-4 readings per record: about 3
    ciphers = {key_id: AESGCM(key) for key_id, key in KEYS.items()}
    decoders = {JSON: msgspec.json.Decoder(Message).decode, MSGPACK: msgspec.msgpack.Decoder(Message).decode}

    def run_floor() -> int:
        return sum(len(decoders[codec](ciphers[key_id].decrypt(nonce, sealed, header)).readings)
                   for key_id, codec, header, nonce, sealed in floor_inputs)

    print(f"alarms: {4 * args.series:,} live instances ({args.series:,} series x 4 rules), {len(stream):,} readings "
          f"in batches of {args.batch}; floor: {len(floor_inputs):,} user records; best of {args.rounds} rounds")
    alarm_s, fired = min(run_alarms() for _ in range(args.rounds))
    n = len(stream)
    floor_s, floor_readings = best(run_floor, args.rounds, time.perf_counter)
    per_reading = alarm_s * 1e6 / n
    floor_record = floor_s * 1e6 / len(floor_inputs)
    floor_reading = floor_s * 1e6 / floor_readings
    print(f"alarms: {per_reading:7.3f} us/reading ({n / alarm_s:,.0f} readings/s, 4 rule evaluations each; "
          f"{fired:,} transitions)")
    print(f"floor : {floor_record:7.3f} us/record, {floor_reading:7.3f} us/reading "
          f"({floor_readings / len(floor_inputs):.2f} readings/record)")
    print(f"ratio alarms/floor per reading: {per_reading / floor_reading:.2f}; per record: "
          f"{per_reading * floor_readings / len(floor_inputs) / floor_record:.2f}")


if __name__ == "__main__":
    main()
