"""Run every benchmark in this folder, one after another, each printing its own side-by-side ratios.

Usage: .venv/bin/python bench/run.py [name ...]   (names: the modules below, without .py)
Numbers vary on a shared 2-core machine; the ratios are measured within one run of each benchmark.
"""

from __future__ import annotations

import runpy
import sys
import time
from pathlib import Path

ORDER = ["decode", "driver", "processing", "alarms", "memory"]


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = argv or [n for n in ORDER if (here / f"{n}.py").exists()]
    for name in names:
        print(f"\n=== bench/{name}.py ===", flush=True)
        started = time.perf_counter()
        runpy.run_path(str(here / f"{name}.py"), run_name="__main__")
        print(f"(bench/{name}.py took {time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main(sys.argv[1:]))
