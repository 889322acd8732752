"""Both applications consume while the simulator runs, with a status line; each stops once caught up and idle."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

from wenu_stream.config import Config
from wenu_stream.devtools.demo.progress import Progress, eta
from wenu_stream.devtools.demo.services import simulator_summary


async def consume_until_idle(
    configs: tuple[Config, ...],
    sim: subprocess.Popen[bytes],
    *,
    duration_s: float,
    idle_s: float,
    progress: Progress,
) -> tuple[int, dict[str, Any]]:
    """Run every application until the simulator is done, its checkpoints stand at the tip, and ``idle_s`` passed.

    The status line says how far the simulation is (it is paced in real time, so its ETA is known) and how
    many user records each application has handled; after the simulation, how far each is from the tip.
    Returns the worst exit code and the simulator's summary.
    """
    from wenu_stream.bootstrap import Runtime
    from wenu_stream.cli.run import consume

    runtimes = tuple(Runtime(config) for config in configs)
    started = time.monotonic()
    state = {rt.config.app: "consuming" for rt in runtimes}
    summary: dict[str, Any] = {}

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
                if not summary:
                    summary.update(await asyncio.to_thread(simulator_summary, sim))
                head = "simulation done"
            total = user_records(summary)
            apps = []
            for rt in runtimes:
                seen = records_seen(rt)
                of = f"/{total:,}" if total else ""
                left = eta(seen, total, elapsed) if total and state[rt.config.app] == "consuming" else ""
                apps.append(f"{rt.config.app} {seen:,.0f}{of} records ({left or state[rt.config.app]})")
            progress.status(f"{head}; {', '.join(apps)}; {elapsed:.0f} s")

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
    if not summary:
        summary.update(simulator_summary(sim))
    return max(codes), summary


def user_records(summary: dict[str, Any]) -> int:
    """User records the simulation put (0 while it runs): what each application must handle."""
    if not summary:
        return 0
    return int(
        summary.get("accepted", 0) + summary.get("duplicates", 0) + sum(summary.get("rejected", {}).values())
    )


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
