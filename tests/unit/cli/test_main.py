"""The command line's contract, through real processes: AWS errors as one line with a documented exit code, the
AWS CLI's global flags, one ``-o`` for every command, ``--set``, and no traceback when the reader of stdout leaves."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.error_server import error_server
from wenu_stream.cli import failures
from wenu_stream.cli.main import main

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "wire-v1.json"


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a machine with no AWS configuration at all, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WENU_"))}
    env |= {
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
    }
    return env | extra


CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def cli(env: dict[str, str], *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wenu_stream", *argv],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The whole of stderr, asserted to be one line without a traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_region_is_exit_2_naming_the_flag_and_the_variables(tmp_path: Path) -> None:
    done = cli(clean_env(tmp_path, **CREDS), "alarms", "list")
    line = one_line(done)
    assert done.returncode == failures.CONFIG == 2
    assert "no AWS region" in line and "--region" in line and "AWS_REGION" in line and "Fix:" in line


def test_aws_region_alone_is_honoured_like_the_aws_cli(tmp_path: Path) -> None:
    """botocore reads only AWS_DEFAULT_REGION; AWS_REGION alone must still get past the region (here to an
    endpoint nobody listens on: exit 5, unreachable)."""
    url = f"http://127.0.0.1:{free_port()}"
    done = cli(clean_env(tmp_path, AWS_REGION="eu-west-1", **CREDS), "alarms", "list", "--endpoint-url", url)
    line = one_line(done)
    assert done.returncode == failures.UNAVAILABLE == 5
    assert "cannot reach" in line and url in line and "Fix:" in line


def test_no_credentials_is_exit_2(tmp_path: Path) -> None:
    done = cli(clean_env(tmp_path), "--region", "eu-west-1", "alarms", "list")
    line = one_line(done)
    assert done.returncode == 2 and "no AWS credentials" in line and "--profile" in line


def test_an_unknown_profile_is_exit_2(tmp_path: Path) -> None:
    done = cli(clean_env(tmp_path), "alarms", "list", "--profile", "nope", "--region", "eu-west-1")
    line = one_line(done)
    assert done.returncode == 2 and "nope" in line and "Fix:" in line


@pytest.mark.parametrize(
    ("status", "code", "exit_code", "words"),
    [
        (400, "AccessDeniedException", failures.DENIED, "AWS refused Scan: AccessDeniedException"),
        (400, "UnrecognizedClientException", failures.DENIED, "AWS refused Scan"),
        (400, "ThrottlingException", failures.UNAVAILABLE, "AWS throttled Scan"),
        (500, "InternalServerError", failures.UNAVAILABLE, "HTTP 500"),
        (400, "ResourceNotFoundException", failures.NOT_FOUND, "wenu-stream provision"),
    ],
)
def test_aws_errors_are_one_line_with_their_exit_code(
    tmp_path: Path, status: int, code: str, exit_code: int, words: str
) -> None:
    with error_server(status, code) as url:
        env = clean_env(tmp_path, AWS_DEFAULT_REGION="eu-west-1", **CREDS)
        done = cli(env, "alarms", "list", "-o", "json", "--endpoint-url", url)
    line = one_line(done)
    assert done.returncode == exit_code, line
    assert (words in line and "Fix:" in line) or exit_code == failures.FAILED


def test_the_exit_codes_are_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for code in ("0 ", "2 ", "3 ", "4 ", "5 ", "6 ", "141"):
        assert f"  {code}" in text


def test_a_closed_pipe_ends_quietly_with_141(tmp_path: Path) -> None:
    """`wenu-stream records decode < many | head -1`: no BrokenPipeError traceback."""
    vectors = json.loads(VECTORS.read_text())
    keyring = tmp_path / "keyring.json"
    keyring.write_text(json.dumps(vectors["keyring"]))
    keyring.chmod(0o600)
    line = next(
        json.dumps({"data_b64": c["data_b64"], "partition_key": c["partition_key"]})
        for c in vectors["cases"]
        if c["expect"][0]["ok"]
    )
    many = tmp_path / "records.jsonl"
    many.write_text((line + "\n") * 20_000)  # far more output than a pipe buffer holds
    with many.open() as stdin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wenu_stream", "records", "decode", "--keyring", str(keyring)],
            env=clean_env(tmp_path),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its first line
    assert proc.wait(timeout=120) == failures.BROKEN_PIPE
    assert json.loads(first)["accepted"] is True
    assert "Traceback" not in proc.stderr.read()


def test_output_and_set_go_before_or_after_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-o", "jsonl", "--set", "kinesis.stream=one", "check-config"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert main(["check-config", "-o", "jsonl", "--set", "WENU_KINESIS_STREAM=one"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert before == after and before["kinesis"]["stream"] == "one"
    assert main(["check-config", "--set", "kinesis.stream=one", "--stream", "flag-wins"]) == 0
    assert json.loads(capsys.readouterr().out)["kinesis"]["stream"] == "flag-wins"


def test_every_setting_can_be_set_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    from wenu_stream.config import LEAVES

    assert main(["check-config", "--set", "stats.lateness_s=60", "--set", "api.port=9999"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stats"]["lateness_s"] == 60 and out["api"]["port"] == 9999
    assert len(LEAVES) > 50  # every one of them is a --set name


@pytest.mark.parametrize(
    ("argv", "env", "words"),
    [
        (["check-config", "--set", "kinesis.strem=x"], {}, "did you mean kinesis.stream?"),
        (["check-config", "--set", "stream"], {}, "not KEY=VALUE"),
        (["check-config"], {"WENU_KINESIS_STRAEM": "x"}, "did you mean WENU_KINESIS_STREAM?"),
        (["check-config"], {"WENU_SINK_BUCKET": "x"}, "did you mean WENU_SINKS_BUCKET?"),
    ],
)
def test_a_misspelt_setting_suggests_the_whole_name(
    argv: list[str],
    env: dict[str, str],
    words: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(argv) == 2
    assert words in capsys.readouterr().err
