"""`wenu-stream completion bash` completes commands, flags and choices in a real bash, without running Python."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("completion") / "wenu-stream.bash"
    done = subprocess.run(
        [sys.executable, "-m", "wenu_stream", "completion", "bash"],
        capture_output=True,
        text=True,
        check=True,
    )
    out.write_text(done.stdout)
    return out


def complete(script: Path, *words: str) -> list[str]:
    """What TAB offers after ``wenu-stream WORDS...`` (the last word is the one being completed)."""
    assert shutil.which("bash"), "bash is part of every supported machine"
    argv = " ".join(f"'{w}'" for w in ("wenu-stream", *words))
    program = (
        f"source {script}; COMP_WORDS=({argv}); COMP_CWORD={len(words)}; "
        'COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; _shtab_wenu_stream; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    # PATH without the venv: a TAB must not need Python
    done = subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}
    )
    return sorted(filter(None, done.stdout.split()))


def test_commands_subcommands_flags_and_choices(script: Path) -> None:
    assert "alarms" in complete(script, "al")
    assert complete(script, "checkpoints", "") == ["list", "reset"]
    assert "--severity" in complete(script, "alarms", "list", "--sev")
    assert complete(script, "alarms", "list", "--state", "") == ["firing", "ok", "pending"]
    assert complete(script, "stats", "query", "-o", "") == [
        "json",
        "jsonl",
        "table",
    ]  # a global option, after the command
    assert complete(script, "completion", "") == ["bash", "tcsh", "zsh"]
