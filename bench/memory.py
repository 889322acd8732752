"""Benchmark: resident memory of the KCL path against the native driver, both consuming one 8-shard stream.

Run: ``.venv/bin/python bench/memory.py [--shards 8] [--devices 24]`` (after ``make kcl``)

Starts its own local stack on 127.0.0.1 (moto for DynamoDB/S3, kinesis-local for
Kinesis: the daemon's HTTP/2 client needs it), fills the stream with the
simulator, then runs, one after the other, until each has made every record
durable:
- KCL: the MultiLangDaemon (JVM, production flags) + one ``consumers/processing.py`` per shard;
- native: ``wenu-stream run`` (one process, every shard).
Once a run has caught up it samples for a few seconds and prints the peak sum
of RSS (``/proc/<pid>/status`` VmRSS) over the process tree, the same for PSS
(``smaps_rollup``: shared pages split between processes, so the per-shard
Python children's shared libraries are not counted eight times), and the ratio.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.support.records import KEYS
from tests.support.scenario import fill_stream, fleet_catalog_for, prepare, run_config, write_keyring
from wenu_stream.devtools.emulator import StackSpec, start_stack, stop_stack
from wenu_stream.drivers.kcl.properties import local_overrides, render_properties
from wenu_stream.ops.report import shard_totals, sum_totals

JARS = ROOT / ".kcl" / "jars"


def tree(root: int) -> list[int]:
    """``root`` and every descendant process, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def _kib(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def sample(root: int, seconds: float = 5.0) -> tuple[int, int, int, int]:
    """Peak (processes, RSS KiB, PSS KiB, RSS KiB of ``root`` alone) of the tree under ``root`` over ``seconds``."""
    best = (0, 0, 0, 0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pids = tree(root)
        rss = sum(_kib(f"/proc/{p}/status", "VmRSS:") for p in pids)
        pss = sum(_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
        best = max(best, (len(pids), rss, pss, _kib(f"/proc/{root}/status", "VmRSS:")), key=lambda t: t[1])
        time.sleep(0.5)
    return best


def wait_done(
    config: object, want: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 600
) -> float:
    started = time.monotonic()
    while True:
        try:
            done = sum_totals(shard_totals(config)).records  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - tables appear a moment after start
            done = 0
        if done == want:
            return time.monotonic() - started
        if proc.poll() is not None or time.monotonic() - started > timeout:
            raise SystemExit(f"run stopped or timed out at {done}/{want} records; log: {log}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_kcl(
    stream: str, keyring: Path, folder: Path, kinesis_url: str, moto_url: str, want: int, devices: int
) -> tuple[int, int, int, int, float]:
    env = run_config(stream, "kcl", keyring, WENU_KINESIS_CHECKPOINT_INTERVAL_S="1")
    config = prepare(env, fleet_catalog_for(devices))
    overrides = local_overrides(
        "processing",
        kinesis_url=kinesis_url,
        dynamodb_url=moto_url,
        region="us-east-1",
        root=ROOT,
        python=sys.executable,
    )
    overrides |= {
        "streamName": stream,
        "applicationName": config.lease_table,
        "failoverTimeMillis": "4000",
        "leaseAssignmentIntervalMillis": "1000",
        "shardSyncIntervalMillis": "1000",
    }
    props = folder / "kcl.properties"
    props.write_text(render_properties("processing", overrides, root=ROOT))
    log = folder / "kcl.log"
    full = {k: v for k, v in os.environ.items() if not k.startswith("WENU_")} | env
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                "java",
                "-cp",
                f"{JARS}/*",
                "software.amazon.kinesis.multilang.MultiLangDaemon",
                "-p",
                str(props),
            ],
            env=full,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        took = wait_done(config, want, proc, log)
        return (*sample(proc.pid), took)
    finally:
        stop(proc)


def run_native(
    stream: str, keyring: Path, folder: Path, want: int, devices: int
) -> tuple[int, int, int, int, float]:
    env = run_config(stream, "native", keyring, WENU_KINESIS_CHECKPOINT_INTERVAL_S="1")
    config = prepare(env, fleet_catalog_for(devices))
    log = folder / "native.log"
    full = {k: v for k, v in os.environ.items() if not k.startswith("WENU_")} | env
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wenu_stream", "run"],
            env=full,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=out,
            start_new_session=True,
        )
    try:
        took = wait_done(config, want, proc, log)
        return (*sample(proc.pid), took)
    finally:
        stop(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--devices", type=int, default=24)
    parser.add_argument("--duration-s", type=float, default=40)
    args = parser.parse_args(argv)
    if not list(JARS.glob("amazon-kinesis-client-multilang-*.jar")):
        print(f"no KCL jars in {JARS}: run `make kcl` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="wenu-bench-memory-") as tmp:
        folder = Path(tmp)
        stack = start_stack(StackSpec(run_dir=str(folder / "stack")))
        kinesis = start_stack(
            StackSpec(run_dir=str(folder / "kinesis"), kinesis="kinesis-local", with_moto=False)
        )
        try:
            os.environ.update(stack.env() | {"AWS_ENDPOINT_URL_KINESIS": kinesis.kinesis_url})
            keyring = write_keyring(folder / "keys.json", KEYS)
            expected = fill_stream(
                "bench-memory", KEYS, shards=args.shards, devices=args.devices, duration_s=args.duration_s
            )
            print(
                f"stream: {args.shards} shards, {expected.records} Kinesis records, "
                f"{expected.user_records} user records"
            )
            kcl = run_kcl(
                "bench-memory",
                keyring,
                folder,
                kinesis.kinesis_url,
                stack.moto_url,
                expected.user_records,
                args.devices,
            )
            # The driver counts Kinesis records (it deaggregates inside the batch); the daemon deaggregates first.
            native = run_native("bench-memory", keyring, folder, expected.records, args.devices)
        finally:
            stop_stack(kinesis)
            stop_stack(stack)
    for name, (procs, rss, pss, root, took) in (
        ("KCL (JVM + per-shard Python)", kcl),
        ("native driver", native),
    ):
        print(
            f"{name:30s} processes={procs:2d}  RSS={rss / 1024:7.1f} MiB (first process {root / 1024:6.1f})  "
            f"PSS={pss / 1024:7.1f} MiB  caught up in {took:5.1f} s"
        )
    print(f"ratio KCL/native: RSS {kcl[1] / native[1]:.1f}x  PSS {kcl[2] / native[2]:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
