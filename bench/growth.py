"""Growth: worker CPU and memory per reading and per series at 500 and 5,000 meters, on 4 and 16 shards.

Run: ``.venv/bin/python bench/growth.py [--quick] [--minutes 3]``

Each point runs in its own process (clean memory figures), with its own local
stack, the fleet of ``bench/fleet.py`` (three series a meter, one message a
minute) as a backlog: both applications read every record of ``--minutes``
minutes, every shard at once. Printed per point and application: worker CPU
per reading, resident memory added while processing (VmHWM at the end minus
VmRSS before, so the records themselves are not in it) per series, and the
ratios between the points (nothing should grow with the fleet or the shard
count; what does is named).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fleet as fl

POINTS = ((500, 4), (500, 16), (5_000, 4), (5_000, 16))


def memory_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


async def child(devices: int, shards: int, minutes: int) -> dict[str, object]:
    from wenu_stream.devtools.emulator import StackSpec, start_stack, stop_stack

    built = fl.build_fleet(devices, minutes, shards)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-growth-"))
    stack = start_stack(StackSpec(run_dir=str(run_dir / "stack")))
    meter = fl.MeterProcess(stack.dynamodb_url)
    os.environ.update(stack.env() | {"AWS_ENDPOINT_URL_DYNAMODB": meter.url})
    out: dict[str, object] = {"devices": devices, "shards": shards, "series": 3 * devices}
    try:
        for app in ("processing", "alarms"):
            tag = f"{app[:4]}-{time.time_ns() % 10**9}"
            folder = run_dir / tag
            folder.mkdir()
            config = fl.make_config(app, folder, tag)
            fl.prepare(config, devices)
            Path("/proc/self/clear_refs").write_text("5")  # noqa: ASYNC240 - reset VmHWM to the current RSS
            before = memory_kib("VmRSS:")
            run = await fl.run_backlog(config, built, meter)
            out[app] = {"cpu_ms_per_reading": run.cpu_s / run.readings * 1e3, "readings": run.readings,
                        "kib_per_series": (memory_kib("VmHWM:") - before) / (3 * devices)}  # fmt: skip
    finally:
        meter.close()
        stop_stack(stack)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 simulated minutes")
    parser.add_argument("--minutes", type=int, default=3)
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(*args.child, args.minutes))))
        return
    minutes = 2 if args.quick else args.minutes
    results = []
    for devices, shards in POINTS:
        cmd = [sys.executable, __file__, "--child", str(devices), str(shards), "--minutes", str(minutes)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"  {devices:,} meters on {shards} shards done", flush=True)
    print(f"\nbacklog of {minutes} minutes of one message a meter a minute (3 series a meter)")
    print(f"{'meters':>7}{'shards':>7}{'series':>8} | {'processing ms/rd':>16}{'KiB/series':>11} | "
          f"{'alarms ms/rd':>13}{'KiB/series':>11}")  # fmt: skip
    for r in results:
        p, a = r["processing"], r["alarms"]
        print(
            f"{r['devices']:>7,}{r['shards']:>7}{r['series']:>8,} | {p['cpu_ms_per_reading']:>16.3f}"
            f"{p['kib_per_series']:>11.2f} | {a['cpu_ms_per_reading']:>13.3f}{a['kib_per_series']:>11.2f}"
        )
    base = results[0]
    for r in results[1:]:
        ratios = [
            r[app]["cpu_ms_per_reading"] / base[app]["cpu_ms_per_reading"] for app in ("processing", "alarms")
        ]
        print(f"CPU per reading, {r['devices']:,} meters / {r['shards']} shards vs 500 / 4: "
              f"processing {ratios[0]:.2f}x, alarms {ratios[1]:.2f}x")  # fmt: skip
    print(
        "limits: worker CPU of the child process only; memory is the peak added while processing (VmHWM), "
        "which includes Python's allocator keeping freed pages"
    )


if __name__ == "__main__":
    main()
