"""After ``demo --keep``: the lines to paste to explore the demo's stack, and ``demo --stop DIR`` to end it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from wenu_stream.devtools.demo.progress import Progress
from wenu_stream.errors import NotFoundError

STATE = "demo.json"  # what --keep left running, in the demo's folder


def paste_lines(kept: dict[str, Any], progress: Progress) -> None:
    """Print the exports that point a shell at the kept stack (README "Explore the demo" continues from there)."""
    run_dir = kept["run_dir"]
    bindir = os.path.dirname(sys.executable)
    progress.say(
        '      paste these lines into a shell, then try the commands of README.md, "Explore the demo":'
    )
    progress.say("")
    for line in (
        f'export PATH="{bindir}:$PATH"',
        f'eval "$(wenu-stream emulator env --run-dir {shlex.quote(kept["stack_dir"])})"',
        f"export WENU_KEYRING_FILE={shlex.quote(kept['keyring'])}",
        f"export WENU_CATALOG_URL={shlex.quote(kept['catalog_url'])}",
        f"export WENU_WAREHOUSE_DSN={shlex.quote(kept['warehouse_dsn'])}",
        f"export WENU_API_DEV_SECRET_FILE={shlex.quote(kept['api_secret'])}",
        f"export WENU_API_URL={kept['api_url']}",
        f"export WENU_TOKEN={kept['token']}",
    ):
        progress.say(line)
    progress.say("")
    progress.say(
        f"      the backoffice: {kept['api_url']}/ui/ (sign in with the token); "
        f"when done: wenu-stream demo --stop {shlex.quote(run_dir)}"
    )


def stop(run_dir: Path) -> int:
    """Stop the API, the warehouse and the stack that ``demo --keep`` left in ``run_dir``, then remove it."""
    from wenu_stream.devtools.emulator.postgres import Postgres, stop_postgres
    from wenu_stream.devtools.emulator.stack import read_stack, stop_stack

    state_file = run_dir / STATE
    if not state_file.is_file():
        raise NotFoundError(
            f"no demo kept in {run_dir} (no {STATE})", "give the folder `wenu-stream demo --keep` printed"
        )
    kept = json.loads(state_file.read_text())
    if "api_pid" in kept:
        try:
            os.kill(int(kept["api_pid"]), signal.SIGTERM)
        except ProcessLookupError:
            pass
    if "postgres" in kept:
        stop_postgres(Postgres(**kept["postgres"]))
    stack = read_stack(kept["stack_dir"])
    if stack is not None:
        stop_stack(stack)
    shutil.rmtree(run_dir, ignore_errors=True)
    print(f"stopped the demo kept in {run_dir}")
    return 0
