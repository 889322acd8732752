"""Benchmark: the native driver's CPU per record against a bare aiobotocore GetRecords loop, on kinesalite.

Run: ``.venv/bin/python bench/driver.py [--records 100000] [--rss-shards 8]``

Starts its own local stack (kinesalite + moto on 127.0.0.1), fills a 4-shard
stream with small random records, then reads every record three ways in this
process, side by side:
- (a) bare: aiobotocore ``get_records`` loops, all shards concurrently, until caught up;
- (b) fast: the driver's ``FastGetRecords`` (SigV4 + aiohttp + msgspec) in the same loop;
- (c) driver: ``run_worker`` with a trivial processor (leases, checkpoints, idle exit);
- (d) pipeline: on a second stream of realistic encrypted meter records (the simulator, JSON and
  MessagePack, a few faults), the driver doing all of its work: decrypt, decode, validate,
  deduplicate, dead letters to S3, shard state to DynamoDB, checkpoints; against (a) on the same
  records. The state table and the bucket are provisioned before the measured run (deploy-time
  work); the runtime's start (key ring, clients) is measured.
Prints CPU seconds (``time.process_time``) per 100k records, records/s and
the ratios to (a) (issue target: driver <= 0.3). Then runs the driver on an
8-shard stream in a child process and prints its peak RSS (target <= 150 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from aiobotocore.session import get_session
from prometheus_client import CollectorRegistry

from wenu_stream.config import Config, load_config
from wenu_stream.devtools.emulator import StackSpec, start_stack, stop_stack
from wenu_stream.drivers.native.kinesis import FastGetRecords, get_shard_iterator, list_shards
from wenu_stream.drivers.native.worker import run_worker
from wenu_stream.metrics import Metrics
from wenu_stream.model import KinesisRecord
from wenu_stream.ops.report import dead_letter_counts


def fill(stream: str, shards: int, count: int) -> None:
    """Create ``stream`` and put ``count`` records of 64 random bytes, spread over every shard."""
    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName=stream, ShardCount=shards)
    while (
        kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"]
        != "ACTIVE"
    ):
        time.sleep(0.05)
    for first in range(0, count, 500):
        batch = [
            {"Data": os.urandom(64), "PartitionKey": f"EM-{i:06d}"}
            for i in range(first, min(count, first + 500))
        ]
        out = kinesis.put_records(StreamName=stream, Records=batch)
        assert out.get("FailedRecordCount", 0) == 0


async def read_all(stream: str, get: Callable[[object, str], Awaitable[tuple[int, str | None]]]) -> int:
    """Read every shard from TRIM_HORIZON until a call returns no records; return the record count."""
    session = get_session()
    async with session.create_client("kinesis") as client:
        shards = await list_shards(client, stream)

        async def one(shard_id: str) -> int:
            iterator: str | None = await get_shard_iterator(client, stream, shard_id, "TRIM_HORIZON")
            total = 0
            while iterator:
                count, iterator = await get(client, iterator)
                total += count
                if not count:
                    break
            return total

        return sum(await asyncio.gather(*(one(s.shard_id) for s in shards)))


async def bare(stream: str) -> int:
    async def get(client: object, iterator: str) -> tuple[int, str | None]:
        out = await client.get_records(ShardIterator=iterator, Limit=10_000)  # type: ignore[attr-defined]
        return len(out["Records"]), out.get("NextShardIterator")

    return await read_all(stream, get)


async def fast(stream: str) -> int:
    session = get_session()
    async with session.create_client("kinesis") as client:
        reader = await FastGetRecords.open(session, client)
        try:

            async def get(_client: object, iterator: str) -> tuple[int, str | None]:
                out = await reader.get_records(iterator, 10_000)
                return len(out.records), out.next_shard_iterator

            return await read_all(stream, get)
        finally:
            await reader.close()


class Trivial:
    """A processor that only counts: every batch is durable at once."""

    async def initialize(
        self, shard_id: str, checkpoint: str | None, parent_shard_ids: Sequence[str]
    ) -> None:
        pass

    async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> bool:
        return True

    async def flush(self) -> str | None:
        return None

    settled = True

    async def shard_ended(self) -> None:
        pass

    async def close(self) -> None:
        pass


async def driver(stream: str) -> int:
    config = load_config(
        {},
        {
            "kinesis.stream": stream,
            "lease.table": f"{stream}-leases-{time.time_ns()}",
            "lease.worker_id": "bench",
            "kinesis.idle_exit_s": 1.0,
        },
    )
    result = await run_worker(config, lambda _s: Trivial(), metrics=Metrics.create(CollectorRegistry()))
    return result.records


def fill_realistic(stream: str, shards: int, messages: int) -> int:
    """Create ``stream`` and put about ``messages`` simulated meter messages; return the Kinesis record count."""
    from wenu_stream.devtools.simulate import SimulationConfig, Tally, generate, parse_faults
    from wenu_stream.devtools.simulate.producer import KinesisProducer, Pacer, put_all

    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName=stream, ShardCount=shards)
    while (
        kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"]
        != "ACTIVE"
    ):
        time.sleep(0.05)
    devices = 500
    sim = SimulationConfig(
        devices=devices,
        interval_s=10.0,
        duration_s=messages * 10.0 / devices,
        seed=5,
        faults=parse_faults("corrupt=0.002,tamper=0.002,duplicate=0.01"),
    )
    tally = Tally()
    put_all(generate(sim, KEYS), KinesisProducer(stream).put, Pacer("none"), tally=tally)
    return tally.result().records


KEYS = {"bench-key": bytes(range(32))}


def provision(stream: str, keyring_file: str) -> Config:
    """The config of a pipeline run, with its state table and bucket created (``wenu-stream provision``'s
    work at deploy time, not the consumer's, so it is done before the measured run)."""
    from wenu_stream.aws.provision import ensure_bucket, ensure_state_table

    tag = time.time_ns()
    config = load_config(
        {},
        {
            "kinesis.stream": stream,
            "lease.table": f"{stream}-leases-{tag}",
            "lease.worker_id": "bench",
            "kinesis.idle_exit_s": 1.0,
            "sinks.state_table": f"{stream}-state-{tag}",
            "sinks.bucket": f"{stream}-{tag}",
            "keyring.file": keyring_file,
        },
    )
    ensure_state_table(config, {})
    ensure_bucket(config, {})
    return config


async def pipeline(config: Config) -> int:
    """The native driver with the real processor (foundation pipeline: no application sinks)."""
    from wenu_stream.bootstrap import Runtime

    async def no_sinks(_rt: object) -> tuple[()]:
        return ()

    async with Runtime(config, sinks=no_sinks) as rt:
        result = await run_worker(config, rt.processor_factory(), metrics=rt.metrics, session=rt.session)
    return result.records


def count_objects(config: Config) -> int:
    pages = (
        boto3.client("s3")
        .get_paginator("list_objects_v2")
        .paginate(Bucket=config.sinks.bucket, Prefix=config.sinks.dead_letter_prefix)
    )
    return sum(len(page.get("Contents", [])) for page in pages)


def measure(name: str, run: Callable[[], Awaitable[int]]) -> tuple[float, float, int]:
    cpu, wall = time.process_time(), time.perf_counter()
    count = asyncio.run(run())
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"{name:<8} {count:>8} records  {cpu / count * 1e5:6.2f} CPU-s/100k  {count / wall:9.0f} records/s",
        flush=True,
    )
    return cpu / count * 1e5, wall, count


def peak_rss_mb() -> float:
    """This process's own peak RSS: ``VmHWM`` of /proc/self/status where there is one.

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: on Linux a process started by fork (or vfork) and exec
    inherits its parent's peak there, so the child of this benchmark, after the parent read 200k records
    in-process, reported the parent's 140-155 MB instead of its own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(stream: str) -> None:
    count = asyncio.run(driver(stream))
    print(f"{count} {peak_rss_mb():.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rss-shards", type=int, default=8)
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        return rss_child(args.rss_child)
    stack = start_stack(StackSpec(run_dir=tempfile.mkdtemp(prefix="bench-driver-")))
    os.environ.update(stack.env())
    try:
        started = time.perf_counter()
        fill("bench4", 4, args.records)
        print(f"filled a 4-shard stream with {args.records} records in {time.perf_counter() - started:.1f} s")
        base, _, _ = measure("bare", lambda: bare("bench4"))
        quick, _, _ = measure("fast", lambda: fast("bench4"))
        whole, _, _ = measure("driver", lambda: driver("bench4"))
        print(f"ratio fast/bare   {quick / base:.2f}")
        print(f"ratio driver/bare {whole / base:.2f}   (trivial processor: leases, checkpoints, 1 s idle)")
        started = time.perf_counter()
        records = fill_realistic("real4", 4, args.records)
        print(
            f"filled a 4-shard stream with {records} simulated meter records in {time.perf_counter() - started:.1f} s"
        )
        keyring = Path(tempfile.mkdtemp(prefix="bench-keys-")) / "keys.json"
        keyring.write_text('{"bench-key": "' + base64.b64encode(KEYS["bench-key"]).decode() + '"}')
        base_real, _, _ = measure("bare", lambda: bare("real4"))
        config = provision("real4", str(keyring))
        full, _, _ = measure("pipeline", lambda: pipeline(config))
        letters = sum(dead_letter_counts(config).values())
        print(f"dead letters: {letters} in {count_objects(config)} objects (one per shard, batch and reason)")
        print(
            f"ratio pipeline/bare {full / base_real:.2f}   (target <= 0.30: the whole driver doing all its work)"
        )
        fill("bench8", args.rss_shards, args.records)
        out = subprocess.run(
            [sys.executable, __file__, "--rss-child", "bench8"],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ,
        )
        count, peak = out.stdout.split()
        print(f"peak RSS, driver on {args.rss_shards} shards ({count} records): {peak} MB (target <= 150)")
    finally:
        stop_stack(stack)


if __name__ == "__main__":
    main()
