"""A throwaway PostgreSQL server on 127.0.0.1 (the warehouse of the demo and the tests).

``initdb`` + ``pg_ctl start`` in a fresh directory on a free loopback port.
``initdb`` refuses to run as root, so under root the server runs as the
``postgres`` OS user (``runuser``). When the binaries are missing, Debian's
``postgresql`` package is installed with apt-get.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import msgspec

from wenu_stream.devtools.emulator.stack import free_port

_USER = "postgres"


class Postgres(msgspec.Struct, kw_only=True):
    """A running server: its DSN (superuser ``postgres``, trust auth on loopback) and where it lives."""

    dsn: str
    root: str
    bindir: str


def bindir() -> Path:
    """Where initdb and pg_ctl live; installs Debian's postgresql package when they are missing."""
    for _ in range(2):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if found:
            return Path(found[-1]).parent
        if shutil.which("initdb") and shutil.which("pg_ctl"):
            return Path(shutil.which("initdb") or "").resolve().parent
        subprocess.run(["apt-get", "update"], check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
            check=True,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    raise RuntimeError("PostgreSQL binaries not found after installing the postgresql package")


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", _USER, "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str]) -> None:
    done = subprocess.run(_as_server_user(argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def start_postgres() -> Postgres:
    """Initialise and start a server in a new temporary directory (under /tmp: the server user can reach it)."""
    bins = bindir()
    root = Path(tempfile.mkdtemp(prefix="wenu-pg-"))
    data, port = root / "data", free_port()
    if os.geteuid() == 0:
        shutil.chown(root, _USER)
    _run(
        [
            str(bins / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ]
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
    _run(
        [
            str(bins / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ]
    )
    return Postgres(dsn=f"postgresql://postgres@127.0.0.1:{port}/postgres", root=str(root), bindir=str(bins))


def stop_postgres(server: Postgres) -> None:
    """Stop the server and remove its directory."""
    try:
        _run(
            [
                str(Path(server.bindir) / "pg_ctl"),
                "-D",
                str(Path(server.root) / "data"),
                "-m",
                "fast",
                "-w",
                "stop",
            ]
        )
    finally:
        shutil.rmtree(server.root, ignore_errors=True)
