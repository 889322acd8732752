"""Run every benchmark in this folder, one after another, each printing its own side-by-side ratios.

Usage: .venv/bin/python bench/run.py [--quick] [name ...]   (names: the modules below, without .py)

Numbers vary on a shared 2-core machine; the ratios are measured within one run of each benchmark.
``--quick`` (development) runs each benchmark on a smaller load (``QUICK``); the full mode is the one
quoted in notes. ``make bench`` runs the full mode (``make bench ARGS=--quick`` the quick one); both
finish in under 10 minutes on this machine when it is not shared with other work.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ORDER = ["decode", "driver", "fleet", "processing", "alarms", "memory", "api", "backoffice"]
QUICK: dict[str, list[str]] = {  # smaller loads for --quick
    "decode": ["--records", "5000", "--rounds", "3"],
    "driver": ["--records", "20000", "--rss-shards", "4"],
    "fleet": ["--quick"],
    "alarms": ["--readings", "20000", "--rounds", "2", "--latency", "10"],
    "memory": ["--shards", "4", "--devices", "8", "--duration-s", "20"],
    "api": ["--devices", "50", "--reads", "100", "--applies", "20"],
    "backoffice": ["--devices", "50", "--requests", "30"],
}


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    quick = "--quick" in argv
    names = [a for a in argv if a != "--quick"] or [n for n in ORDER if (here / f"{n}.py").exists()]
    failed = []
    began = time.perf_counter()
    for name in names:  # each in its own process: one benchmark's failure or memory does not touch the next
        args = QUICK.get(name, []) if quick else []
        print(f"\n=== bench/{name}.py{''.join(' ' + a for a in args)} ===", flush=True)
        started = time.perf_counter()
        code = subprocess.run(
            [sys.executable, str(here / f"{name}.py"), *args], stderr=subprocess.DEVNULL
        ).returncode
        print(f"(bench/{name}.py took {time.perf_counter() - started:.1f} s, exit code {code})", flush=True)
        if code:
            failed.append(name)
    print(f"\nall benchmarks: {time.perf_counter() - began:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main(sys.argv[1:]))
