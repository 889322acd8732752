"""Run every benchmark in this folder, one after another, each printing its own side-by-side ratios.

Usage: .venv/bin/python bench/run.py [name ...]   (names: the modules below, without .py)
Numbers vary on a shared 2-core machine; the ratios are measured within one run of each benchmark.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ORDER = ["decode", "driver", "processing", "alarms", "memory", "api", "backoffice"]


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = argv or [n for n in ORDER if (here / f"{n}.py").exists()]
    failed = []
    for name in names:  # each in its own process: one benchmark's failure or memory does not touch the next
        print(f"\n=== bench/{name}.py ===", flush=True)
        started = time.perf_counter()
        code = subprocess.run(
            [sys.executable, str(here / f"{name}.py")], stderr=subprocess.DEVNULL
        ).returncode
        print(f"(bench/{name}.py took {time.perf_counter() - started:.1f} s, exit code {code})", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main(sys.argv[1:]))
