"""The README's "Explore the demo" commands work when pasted in order after `make demo ARGS=--keep`.

One real demo (a smaller fleet, consumers left running long enough for the end of the run to fire
`no_data`), its verdict, its paste lines, then every command of the README block in one bash, each
checked for its exit status and for a traceback, then `demo --stop`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Explore the demo", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def clean_env() -> dict[str, str]:
    """The user's shell: none of the test session's stack or settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("WENU_", "AWS_"))}


@pytest.fixture(scope="module")
def demo() -> tuple[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-m", "wenu_stream", "demo", "--devices", "20", "--duration", "40", "--idle-exit", "35",
         "--keep"],
        env=clean_env(), capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
    out = done.stdout
    run_dir = re.search(r"wenu-stream demo --stop (\S+)", out)
    assert run_dir, out + done.stderr
    try:
        assert done.returncode == 0, out + done.stderr
        lines = out.split("paste these lines into a shell", 1)[1].splitlines()[1:]
        paste = [
            line for line in lines[: next(i for i, x in enumerate(lines) if "the backoffice:" in x)] if line
        ]
        yield out, paste
    finally:
        subprocess.run(
            [sys.executable, "-m", "wenu_stream", "demo", "--stop", run_dir.group(1)],
            env=clean_env(), capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        assert not Path(run_dir.group(1)).exists()


@pytest.mark.slow
def test_the_demo_summary_matches_what_the_rules_call_for(demo: tuple[str, list[str]]) -> None:
    out, paste = demo
    assert (
        "verdict: every count and every notification is what the simulation and the rules call for" in out
    ), out
    assert "differs" not in out and "NOT" not in out
    end = re.search(r"\((\d+) from the anomalies, (\d+) from the run's end\)", out)
    assert end and int(end.group(1)) >= 8 and int(end.group(2)) >= 1, out  # power-silent once the meters stop
    assert [line.split("=", 1)[0] for line in paste if line.startswith("export WENU_")] == [
        "export WENU_KEYRING_FILE", "export WENU_CATALOG_URL", "export WENU_WAREHOUSE_DSN",
        "export WENU_API_DEV_SECRET_FILE", "export WENU_API_URL", "export WENU_TOKEN",
    ]  # fmt: skip


@pytest.mark.slow
def test_every_readme_command_works_pasted_in_order(demo: tuple[str, list[str]], tmp_path: Path) -> None:
    _, paste = demo
    commands = readme_commands()
    assert len(commands) >= 15
    script = [*paste, "exec 3>" + str(tmp_path / "status")]
    for n, command in enumerate(commands):
        script += [f"echo '@@ {n}' >&2", command, 'echo "${PIPESTATUS[*]}" >&3']
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], env=clean_env(), capture_output=True, text=True, timeout=600,
        check=False, cwd=tmp_path,
    )  # fmt: skip
    statuses = (tmp_path / "status").read_text().splitlines()
    errors = dict(re.findall(r"@@ (\d+)\n(.*?)(?=@@ \d+\n|\Z)", done.stderr, flags=re.S))
    assert len(statuses) == len(commands), done.stderr
    for n, command in enumerate(commands):
        codes = [int(c) for c in statuses[n].split()]
        err = errors.get(str(n), "")
        assert "Traceback" not in err, f"{command}\n{err}"
        # a pipe into head may end the writer early: 141 is its documented quiet exit
        assert codes[-1] == 0 and all(c in (0, 141) for c in codes), f"{command}: {codes}\n{err}"
    assert "accepted" in done.stdout or "records" in done.stdout
