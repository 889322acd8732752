"""Both applications consume while the simulator runs, with a status line; each stops once caught up and idle."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

from wenu_stream.config import Config
from wenu_stream.devtools.demo.progress import Progress, eta


async def consume_until_idle(
    configs: tuple[Config, ...],
    sim: subprocess.Popen[bytes],
    *,
    duration_s: float,
    idle_s: float,
    progress: Progress,
) -> int:
    """Run every application until the simulator is done, its checkpoints stand at the tip, and ``idle_s`` passed.

    The status line says how far the simulation is (it is paced in real time, so its ETA is known) and how
    many user records each application has handled; after the simulation, how far each is from the tip.
    Returns the worst exit code.
    """
    from wenu_stream.bootstrap import Runtime
    from wenu_stream.cli.run import consume

    runtimes = tuple(Runtime(config) for config in configs)
    started = time.monotonic()
    state = {rt.config.app: "consuming" for rt in runtimes}

    async def watch(rt: Runtime, stop: asyncio.Event) -> None:
        """Stop once the simulator is done and this application's checkpoints stand at the tip: alarms does not
        wait for processing (it would otherwise see the whole fleet fall silent)."""
        while True:
            await asyncio.sleep(1.0)
            if sim.poll() is not None and await asyncio.to_thread(caught_up, rt.config):
                state[rt.config.app] = f"caught up, stopping in {idle_s:.0f} s"
                await asyncio.sleep(idle_s)
                state[rt.config.app] = "stopped"
                stop.set()
                return

    async def show() -> None:
        while True:
            await asyncio.sleep(1.0)
            elapsed = time.monotonic() - started
            if sim.poll() is None:
                left = eta(elapsed, duration_s, elapsed)
                head = f"simulating {min(elapsed, duration_s):.0f}/{duration_s:.0f} s" + (
                    f" ({left})" if left else ""
                )
            else:
                head = "simulation done"
            apps = ", ".join(
                f"{rt.config.app} {records_seen(rt):,.0f} records ({state[rt.config.app]})" for rt in runtimes
            )
            progress.status(f"{head}; {apps}; {elapsed:.0f} s")

    async def run(rt: Runtime) -> int:
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch(rt, stop))
        try:
            return await consume(rt.config, stop=stop, runtime=rt)
        finally:
            watcher.cancel()

    shower = asyncio.create_task(show())
    try:
        codes = await asyncio.gather(*(run(rt) for rt in runtimes))
    finally:
        shower.cancel()
    progress.say(
        f"      consumed in {time.monotonic() - started:.1f} s: "
        + ", ".join(f"{rt.config.app} {records_seen(rt):,.0f} user records" for rt in runtimes)
    )
    return max(codes)


def records_seen(runtime: Any) -> float:
    """User records an application has handled so far (its ``wenu_records_total``)."""
    total = 0.0
    for metric in runtime.registry.collect():
        if metric.name == "wenu_records":
            total += sum(s.value for s in metric.samples if s.name == "wenu_records_total")
    return total


def caught_up(config: Config) -> bool:
    """Whether every shard's checkpoint of ``config.app`` stands at the tip of the stream (all committed)."""
    import boto3

    from wenu_stream.drivers.native.leases import read_leases

    kinesis = boto3.client("kinesis")
    checkpoints = {lease.lease_key: lease.checkpoint for lease in read_leases(config.lease_table)}
    for shard in kinesis.list_shards(StreamName=config.kinesis.stream)["Shards"]:
        checkpoint = checkpoints.get(shard["ShardId"], "TRIM_HORIZON")
        if checkpoint == "SHARD_END":
            continue
        kind: dict[str, Any] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": checkpoint}
            if checkpoint.isdigit()
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator = kinesis.get_shard_iterator(
            StreamName=config.kinesis.stream, ShardId=shard["ShardId"], **kind
        )["ShardIterator"]
        if kinesis.get_records(ShardIterator=iterator, Limit=1)["Records"]:
            return False
    return True
