"""Start, probe and stop the local AWS stack as child processes bound to 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Literal

import msgspec

from wenu_stream.errors import WenuError

HOST = "127.0.0.1"
KinesisKind = Literal["kinesalite", "kinesis-local"]
DynamoKind = Literal["dynalite", "moto"]
_PRELOAD = Path(__file__).with_name("loopback.js")
_STATE_FILE = "stack.json"


class StackSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What to start. Ports 0 mean "pick a free one"."""

    run_dir: str
    kinesis: KinesisKind = "kinesalite"
    dynamodb: DynamoKind = "dynalite"  # moto's DynamoDB: 7-8 ms of its own CPU per write (dynalite: ~1 ms)
    moto_port: int = 0
    kinesis_port: int = 0
    dynamodb_port: int = 0
    persist: bool = (
        False  # kinesalite and dynalite keep their LevelDB under run_dir/kinesis-data, dynamodb-data
    )
    with_moto: bool = True  # False: the Kinesis emulator alone (and no DynamoDB)


class Stack(msgspec.Struct, kw_only=True):
    """A running stack: where it listens and which processes serve it."""

    run_dir: str
    kinesis: KinesisKind
    moto_port: int
    kinesis_port: int
    pids: dict[str, int]
    dynamodb: DynamoKind = "moto"  # (a stack.json written before dynalite was there)
    dynamodb_port: int = 0

    @property
    def moto_url(self) -> str:
        return f"http://{HOST}:{self.moto_port}"

    @property
    def kinesis_url(self) -> str:
        return f"http://{HOST}:{self.kinesis_port}"

    @property
    def dynamodb_url(self) -> str:
        """Where DynamoDB is served: dynalite's port, or moto's."""
        return f"http://{HOST}:{self.dynamodb_port}" if self.dynamodb == "dynalite" else self.moto_url

    def env(self) -> dict[str, str]:
        """SDK settings that route every client to this stack (no endpoint_url in code)."""
        return {
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_ENDPOINT_URL_KINESIS": self.kinesis_url,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }


class EmulatorError(WenuError):
    """The local stack could not be started."""


def free_port() -> int:
    """Ask the kernel for a free loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def node_modules() -> Path:
    """Find the node_modules folder holding the pinned emulators (``make setup`` installs it)."""
    candidates = []
    if os.environ.get("WENU_HOME"):
        candidates.append(Path(os.environ["WENU_HOME"]) / "node_modules")
    for base in (Path.cwd(), Path(__file__).resolve()):
        candidates.extend(parent / "node_modules" for parent in [base, *base.parents])
    for path in candidates:
        if (path / "kinesalite" / "cli.js").exists():
            return path
    raise EmulatorError(
        "node_modules/kinesalite not found. Fix: run `make setup` (npm ci) in the project folder, "
        "or set WENU_HOME to the folder that holds node_modules"
    )


def _moto_command(port: int) -> list[str]:
    return [sys.executable, "-m", "wenu_stream.devtools.emulator.moto_server", "-H", HOST, "-p", str(port)]


_FIDELITY = Path(__file__).with_name("dynalite_fidelity.js")


def _dynalite_command(spec: StackSpec, port: int) -> list[str]:
    """dynalite on loopback; tables are ACTIVE at once (it lacks UpdateTimeToLive: ``aws.provision`` copes)."""
    cli = node_modules() / "dynalite" / "cli.js"
    if not cli.exists():
        raise EmulatorError(f"{cli} not found. Fix: run `make setup` (npm ci installs dynalite)")
    cmd = [
        "node",
        "-r",
        str(_FIDELITY),  # the item a failed condition saw, as DynamoDB returns it (ALL_OLD)
        str(cli),
        "--host",
        HOST,
        "--port",
        str(port),
        *("--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"),
    ]
    if spec.persist:
        cmd += ["--path", str(Path(spec.run_dir) / "dynamodb-data")]
    return cmd


def _kinesis_command(spec: StackSpec, port: int) -> tuple[list[str], dict[str, str]]:
    modules = node_modules()
    env = dict(os.environ)
    if spec.kinesis == "kinesalite":
        cmd = [
            "node",
            "-r",
            str(_PRELOAD),
            str(modules / "kinesalite" / "cli.js"),
            "--port",
            str(port),
            "--createStreamMs",
            "50",
            "--deleteStreamMs",
            "50",
            "--updateStreamMs",
            "50",
            "--shardLimit",
            "1000",  # the test session creates a stream or two per test, and never deletes them
        ]
        if spec.persist:
            cmd += ["--path", str(Path(spec.run_dir) / "kinesis-data")]
        return cmd, env
    kl = modules / "kinesis-local"
    env.update(
        {
            "KINESIS_MOCK_PLAIN_PORT": str(port),
            "KINESIS_MOCK_TLS_PORT": str(free_port()),
            "KINESIS_MOCK_CERT_PATH": str(kl / "server.json"),
            "LOG_LEVEL": "WARN",
            "SHARD_LIMIT": "1000",  # as kinesalite's: a test session never deletes its streams
            **{
                f"{op}_DURATION": "50ms"
                for op in (
                    "CREATE_STREAM",
                    "DELETE_STREAM",
                    "SPLIT_SHARD",
                    "MERGE_SHARDS",
                    "UPDATE_SHARD_COUNT",
                    "REGISTER_STREAM_CONSUMER",
                    "DEREGISTER_STREAM_CONSUMER",
                    "START_STREAM_ENCRYPTION",
                    "STOP_STREAM_ENCRYPTION",
                )
            },
        }
    )
    return ["node", "-r", str(_PRELOAD), str(kl / "main.js")], env


def _spawn(name: str, cmd: list[str], env: dict[str, str] | None, run_dir: Path) -> subprocess.Popen[bytes]:
    log = open(run_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=run_dir,
            start_new_session=True,
        )
    finally:
        log.close()


def _wait_http(url: str, proc: subprocess.Popen[bytes], name: str, timeout: float, run_dir: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (run_dir / f"{name}.log").read_text(errors="replace")[-2000:]
            raise EmulatorError(f"{name} exited with code {proc.returncode} while starting:\n{tail}")
        try:
            urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=1)
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the server is up
        except OSError:
            time.sleep(0.05)
    raise EmulatorError(
        f"{name} did not answer on {url} within {timeout:.0f} s (log: {run_dir / (name + '.log')})"
    )


def start_stack(spec: StackSpec, *, timeout: float = 60.0) -> Stack:
    """Start moto, dynalite and the chosen Kinesis emulator, wait until they answer, record them in ``run_dir``.

    On failure every process already started is stopped before the error is raised.
    """
    run_dir = Path(spec.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    moto_port = spec.moto_port or free_port()
    kinesis_port = spec.kinesis_port or free_port()
    dynalite = spec.with_moto and spec.dynamodb == "dynalite"
    dynamodb_port = (spec.dynamodb_port or free_port()) if dynalite else 0
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        if spec.with_moto:
            procs["moto"] = _spawn("moto", _moto_command(moto_port), None, run_dir)
        if dynalite:
            procs["dynalite"] = _spawn("dynalite", _dynalite_command(spec, dynamodb_port), None, run_dir)
        kcmd, kenv = _kinesis_command(spec, kinesis_port)
        procs[spec.kinesis] = _spawn(spec.kinesis, kcmd, kenv, run_dir)
        if spec.with_moto:
            _wait_http(f"http://{HOST}:{moto_port}/moto-api/", procs["moto"], "moto", timeout, run_dir)
        if dynalite:
            _wait_http(f"http://{HOST}:{dynamodb_port}/", procs["dynalite"], "dynalite", timeout, run_dir)
        _wait_http(f"http://{HOST}:{kinesis_port}/", procs[spec.kinesis], spec.kinesis, timeout, run_dir)
    except BaseException:
        for proc in procs.values():
            _terminate(proc.pid)
        raise
    stack = Stack(
        run_dir=str(run_dir),
        kinesis=spec.kinesis,
        moto_port=moto_port,
        kinesis_port=kinesis_port,
        pids={name: proc.pid for name, proc in procs.items()},
        dynamodb="dynalite" if dynalite else "moto",
        dynamodb_port=dynamodb_port,
    )
    (run_dir / _STATE_FILE).write_bytes(msgspec.json.encode(stack))
    return stack


def read_stack(run_dir: str | Path) -> Stack | None:
    """The stack recorded in ``run_dir`` by a detached start, or None."""
    path = Path(run_dir) / _STATE_FILE
    if not path.exists():
        return None
    return msgspec.json.decode(path.read_bytes(), type=Stack)


def stop_stack(stack: Stack, *, grace: float = 5.0) -> None:
    """Stop every process of ``stack`` (TERM, then KILL after ``grace`` seconds) and forget it."""
    for pid in stack.pids.values():
        _terminate(pid, grace)
    state = Path(stack.run_dir) / _STATE_FILE
    if state.exists():
        state.unlink()


def _terminate(pid: int, grace: float = 5.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        _reap(pid)
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
