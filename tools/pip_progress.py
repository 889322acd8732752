"""Run a pip install and show its progress as one line per package, with a count and the elapsed time.

Usage (make setup): ``python tools/pip_progress.py constraints.txt -- python -m pip install ...``

pip alone is either silent for minutes (``-q``) or a wall of text. This prints what
is being fetched (``[ 12/150] litestar==2.25.0``), then the install phase with its
elapsed time; on a terminal the line is rewritten in place. When pip fails, its
last 60 lines are printed and its exit code returned.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

_COLLECTING = re.compile(r"^Collecting (\S+)")
_SATISFIED = re.compile(r"^Requirement already satisfied: (\S+)")
_INSTALLING = re.compile(r"^Installing collected packages: (.*)")


def main(argv: list[str]) -> int:
    split = argv.index("--")
    constraints, command = Path(argv[split - 1]), argv[split + 1 :]
    total = sum(1 for line in constraints.read_text().splitlines() if line and not line.startswith("#"))
    tty = sys.stdout.isatty()
    started = time.monotonic()
    print(
        f"setup: installing {total} pinned Python packages ({constraints}) into .venv; the first run takes minutes"
    )
    seen: set[str] = set()
    tail: list[str] = []
    phase = {"text": ""}
    stop = threading.Event()

    def show(text: str, *, keep: bool = False) -> None:
        line = f"  [{len(seen):>3}/{total}] {text} ({time.monotonic() - started:.0f} s)"
        if tty:
            sys.stdout.write("\r\x1b[2K" + line + ("\n" if keep else ""))
        else:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def tick() -> None:  # the install phase prints nothing for a while: keep the clock moving
        while not stop.wait(10.0 if not tty else 1.0):
            if phase["text"]:
                show(phase["text"])

    threading.Thread(target=tick, daemon=True).start()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.rstrip()
        tail = [*tail[-59:], line]
        for pattern in (_COLLECTING, _SATISFIED):
            found = pattern.match(line)
            if found and found.group(1) not in seen:
                seen.add(found.group(1))
                if tty or len(seen) % 10 == 0 or len(seen) == 1:
                    show(found.group(1))
        installing = _INSTALLING.match(line)
        if installing:
            count = len(installing.group(1).split(", "))
            phase["text"] = f"installing {count} packages"
            show(phase["text"], keep=True)
    code = proc.wait()
    stop.set()
    if tty:
        sys.stdout.write("\n")
    if code != 0:
        print("setup: pip failed; its last lines:\n" + "\n".join(tail), file=sys.stderr)
        return code
    print(f"setup: Python packages ready in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
