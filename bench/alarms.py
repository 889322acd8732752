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

Latency: ``.venv/bin/python bench/alarms.py --latency 50 [--checkpoint-interval S]``
starts the local stack (moto + kinesalite), runs an alarms worker (native
driver, default polling: 200 ms; commit interval 5 s unless given), and puts
one record at a time whose reading flips a ``for_s: 0`` threshold, so each
record is one notification. It long-polls an SQS queue subscribed to the
alarms topic and reports put -> receive (PutRecord call to message in hand)
per notification, p50 / p99 / max, with a random 0.3-1.3 s pause between records
so they land at random points of the commit interval.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).parent))
from decode import KEYS, best_of, build  # bench/decode.py: the floor's record builder

from wenu_stream.alarms.rules import parse_rules
from wenu_stream.alarms.shard import AlarmEngine
from wenu_stream.model import SeriesReading
from wenu_stream.records.payload import JSON, MSGPACK, Message, StrictMessage

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
        out.append(
            SeriesReading(
                series=f"S-{s:05d}",
                company="acme",
                site="hq",
                timezone="UTC",
                kind="gauge",
                unit="W",
                device=f"EM-{s:05d}",
                ch="p",
                seq=i // series,
                index=0,
                t=T0 + (i // series) * 15_000 + s,
                value=value,
                raw_value=value,
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2_500)
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--latency",
        type=int,
        default=50,
        metavar="N",
        help="then measure put -> SQS latency over N notifications on the local stack (0: skip)",
    )
    parser.add_argument(
        "--checkpoint-interval",
        type=float,
        default=None,
        help="kinesis.checkpoint_interval_s of the alarms worker (default: the config's, 5 s)",
    )
    args = parser.parse_args()
    evaluation_cost(args)
    if args.latency:
        latency(args.latency, args.checkpoint_interval)


def evaluation_cost(args: argparse.Namespace) -> None:
    """Rule evaluation per reading with every instance live, against the decode floor, side by side."""
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
    decoders = {
        JSON: msgspec.json.Decoder(StrictMessage).decode,  # the whole payload table, as before
        MSGPACK: msgspec.msgpack.Decoder(StrictMessage).decode,
    }

    def run_floor() -> int:
        return sum(
            len(decoders[codec](ciphers[key_id].decrypt(nonce, sealed, header)).readings)
            for key_id, codec, header, nonce, sealed in floor_inputs
        )

    print(
        f"alarms: {4 * args.series:,} live instances ({args.series:,} series x 4 rules), {len(stream):,} readings "
        f"in batches of {args.batch}; floor: {len(floor_inputs):,} user records; best of {args.rounds} rounds"
    )
    alarm_s, fired = min(run_alarms() for _ in range(args.rounds))
    n = len(stream)
    floor_s, floor_readings = best_of({"floor": run_floor}, args.rounds, time.perf_counter)["floor"]
    per_reading = alarm_s * 1e6 / n
    floor_record = floor_s * 1e6 / len(floor_inputs)
    floor_reading = floor_s * 1e6 / floor_readings
    print(
        f"alarms: {per_reading:7.3f} us/reading ({n / alarm_s:,.0f} readings/s, 4 rule evaluations each; "
        f"{fired:,} transitions)"
    )
    print(
        f"floor : {floor_record:7.3f} us/record, {floor_reading:7.3f} us/reading "
        f"({floor_readings / len(floor_inputs):.2f} readings/record)"
    )
    print(
        f"ratio alarms/floor per reading: {per_reading / floor_reading:.2f}; per record: "
        f"{per_reading * floor_readings / len(floor_inputs) / floor_record:.2f}"
    )


def latency(count: int, checkpoint_interval: float | None) -> None:
    """Put ``count`` flipping readings one by one; print put -> SQS receive percentiles (local stack)."""
    import os
    import shutil
    import tempfile

    from wenu_stream.devtools.emulator.stack import StackSpec, start_stack, stop_stack

    run_dir = Path(tempfile.mkdtemp(prefix="wenu-bench-alarms-"))
    stack = start_stack(StackSpec(run_dir=str(run_dir / "stack")))
    os.environ.update(stack.env())
    try:
        import asyncio

        config, queue = _latency_setup(run_dir, checkpoint_interval)
        took = asyncio.run(_latency_run(config, queue, count + 2))[2:]  # the first two warm the worker up
        took.sort()

        def p(q):
            return took[min(len(took) - 1, round(q * (len(took) - 1)))]

        print(
            f"alarm latency put -> SQS over {len(took)} notifications (poll {config.kinesis.poll_interval_ms} ms, "
            f"commit interval {config.kinesis.checkpoint_interval_s:g} s): p50 {p(0.5):.3f} s, "
            f"p99 {p(0.99):.3f} s, max {took[-1]:.3f} s, min {took[0]:.3f} s"
        )
    finally:
        stop_stack(stack)
        shutil.rmtree(run_dir, ignore_errors=True)


SERIES_RULE = {
    "id": "bench-flip",
    "type": "threshold",
    "op": ">",
    "value": 100,
    "clear": 100,
    "for_s": 0,
    "severity": "critical",
}


def _latency_setup(run_dir: Path, checkpoint_interval: float | None) -> tuple[object, str]:
    import base64
    import json

    from wenu_stream.aws.provision import provision
    from wenu_stream.catalog.document import validate
    from wenu_stream.catalog.store import CatalogStore
    from wenu_stream.config import load_config
    from wenu_stream.devtools.demo.services import subscribe_queue
    from wenu_stream.devtools.simulate import SimulationConfig, fleet_catalog

    keyring = run_dir / "keyring.json"
    keyring.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in KEYS.items()}))
    overrides = {
        "app": "alarms",
        "keyring.file": str(keyring),
        "catalog.url": f"sqlite:///{run_dir / 'catalog.db'}",
        "log_level": "warning",
        "kinesis.checkpoint_interval_s": checkpoint_interval,
    }
    config = load_config({}, overrides)
    provision(config, shards=1)
    doc = fleet_catalog(SimulationConfig(devices=1))
    power = doc["companies"][0]["sites"][0]["devices"][0]["channels"][0]["series"]
    doc["alarm_rules"] = [{**SERIES_RULE, "series": power}]
    checked = validate(doc)
    assert checked.document is not None, checked.problems
    with CatalogStore(config.catalog.url) as store:
        store.import_document(checked.document)
    return config, subscribe_queue(config, "bench-alarm-latency")


async def _latency_run(config: Any, queue: str, count: int) -> list[float]:
    """Run an alarms worker; put one flipping reading at a time and time its notification's arrival."""
    import asyncio

    import boto3

    from wenu_stream.cli.run import consume
    from wenu_stream.log import configure_logging
    from wenu_stream.records.encoding import encode_payload, seal
    from wenu_stream.records.payload import Reading

    configure_logging("warning")
    kinesis, sqs, stop = boto3.client("kinesis"), boto3.client("sqs"), asyncio.Event()
    worker = asyncio.create_task(consume(config, stop=stop))
    rng, took = random.Random(3), []
    key_id = next(iter(KEYS))
    for seq in range(1, count + 1):
        now = int(time.time() * 1000)
        message = Message(
            device="EM-000001",
            seq=seq,
            sent_at=now,
            readings=(Reading("active_power_w", now, 150.0 if seq % 2 else 50.0),),
        )
        data = seal(
            encode_payload(message, JSON),
            key_id=key_id,
            key=KEYS[key_id],
            codec=JSON,
            nonce=seq.to_bytes(12, "big"),
        )
        started = time.perf_counter()
        await asyncio.to_thread(
            kinesis.put_record, StreamName=config.kinesis.stream, Data=data, PartitionKey="EM-000001"
        )
        await asyncio.to_thread(_receive_one, sqs, queue)
        took.append(time.perf_counter() - started)
        await asyncio.sleep(rng.uniform(0.3, 1.3))
    stop.set()
    await worker
    return took


def _receive_one(sqs: Any, queue: str) -> None:
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=20).get(
            "Messages", []
        )
        if got:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=got[0]["ReceiptHandle"])
            return


if __name__ == "__main__":
    main()
