"""`run` and `check-config --app` check what the application needs before any side effect: exit 2 naming the
setting (key ring, catalog, stream, bucket, tables, topic, metrics address), and no lease table created."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import boto3
import pytest

from tests.fixtures.aws import create_stream
from tests.support.records import KEYS
from tests.support.scenario import fleet_catalog_for, prepare, run_config, write_keyring
from wenu_stream.aws.provision import ensure_alarm_tables, ensure_alarm_topic
from wenu_stream.cli.main import main
from wenu_stream.config import load_config

pytestmark = pytest.mark.integration


@pytest.fixture
def ready_env(
    aws_stack: object, unique_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """A complete setup for `run --app processing` (stream, bucket, tables, catalog, key ring) in the environment."""
    keyring = write_keyring(tmp_path / "keys.json", KEYS)
    keyring.chmod(0o600)
    env = run_config(unique_name, unique_name, keyring)
    create_stream(unique_name, 1)
    prepare(env, fleet_catalog_for(4))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def lease_table_exists(name: str) -> bool:
    return name in boto3.client("dynamodb").list_tables()["TableNames"]


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2, argv
    out = capsys.readouterr()
    assert out.out == "" and "Traceback" not in out.err and "Fix:" in out.err
    return out.err


@pytest.mark.parametrize("command", [["run", "--app", "processing"], ["check-config", "--app", "processing"]])
@pytest.mark.parametrize(
    ("flags", "setting"),
    [
        (["--stream", "no-such-stream"], "WENU_KINESIS_STREAM = no-such-stream"),
        (["--bucket", "no-such-bucket-x"], "WENU_SINKS_BUCKET = no-such-bucket-x"),
        (["--set", "stats.table=no-such-table"], "WENU_STATS_TABLE = no-such-table"),
        (["--set", "sinks.state_table=no-such-table"], "WENU_SINKS_STATE_TABLE = no-such-table"),
        (
            ["--keyring", "/nonexistent/keys.json"],
            "WENU_KEYRING_FILE (flag --keyring) = /nonexistent/keys.json",
        ),
        (["--set", "metrics_host=no-such-host.invalid", "--set", "metrics_port=9"], "WENU_METRICS_HOST"),
    ],
)
@pytest.mark.slow
def test_a_missing_piece_is_exit_2_naming_its_setting_and_nothing_is_created(
    ready_env: dict[str, str],
    command: list[str],
    flags: list[str],
    setting: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = refused([*command, *flags], capsys)
    assert setting in err, err
    assert not lease_table_exists(ready_env["WENU_LEASE_TABLE"])


def test_a_wrong_sqlite_catalog_path_is_refused_and_not_created(
    ready_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "typo" / "catalog.db"
    err = refused(["run", "--app", "processing", "--catalog", f"sqlite:///{wrong}"], capsys)
    assert "WENU_CATALOG_URL" in err and "no SQLite catalog" in err
    assert not wrong.exists() and not wrong.parent.exists()
    assert not lease_table_exists(ready_env["WENU_LEASE_TABLE"])


@pytest.mark.slow
def test_an_empty_catalog_is_refused(
    ready_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.db"
    from wenu_stream.catalog.store import CatalogStore

    CatalogStore(f"sqlite:///{empty}").close()  # a store with its schema and no company
    err = refused(["check-config", "--app", "processing", "--catalog", f"sqlite:///{empty}"], capsys)
    assert "holds no company" in err


@pytest.mark.slow
def test_a_port_in_use_is_exit_2_naming_it(
    ready_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        err = refused(["run", "--app", "processing", "--metrics-port", str(port)], capsys)
    assert f"WENU_METRICS_PORT = {port}" in err and "in use" in err
    assert not lease_table_exists(ready_env["WENU_LEASE_TABLE"])


@pytest.mark.slow
def test_alarms_needs_its_tables_and_topic(
    ready_env: dict[str, str], unique_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["check-config", "--app", "alarms", "--set", f"alarms.state_table={unique_name}-as"]
    argv += [
        "--set",
        f"alarms.transitions_table={unique_name}-at",
        "--set",
        f"alarms.topic_name={unique_name}-t",
    ]
    assert "WENU_ALARMS_STATE_TABLE" in refused(argv, capsys)
    config = load_config(ready_env, {"app": "alarms", "alarms.state_table": f"{unique_name}-as",
                                     "alarms.transitions_table": f"{unique_name}-at"})  # fmt: skip
    ensure_alarm_tables(config, {})
    assert f"WENU_ALARMS_TOPIC_NAME = {unique_name}-t" in refused(argv, capsys)
    ensure_alarm_topic(load_config(ready_env, {"alarms.topic_name": f"{unique_name}-t"}), {})
    assert main(argv) == 0
    ready = json.loads(capsys.readouterr().out)["ready"]
    assert ready["WENU_ALARMS_TOPIC_NAME"].endswith(f":{unique_name}-t")


@pytest.mark.slow
def test_check_config_app_lists_what_it_found(
    ready_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "--app", "processing"]) == 0
    out = capsys.readouterr()
    shown = json.loads(out.out)
    assert shown["keyring"]["key_ids"] and shown["ready"]["WENU_KINESIS_STREAM"].startswith(
        ready_env["WENU_KINESIS_STREAM"]
    )
    assert set(shown["ready"]) >= {
        "WENU_CATALOG_URL",
        "WENU_SINKS_BUCKET",
        "WENU_STATS_TABLE",
        "WENU_SINKS_STATE_TABLE",
    }
    assert "warning" not in out.err
    Path(ready_env["WENU_KEYRING_FILE"]).chmod(0o644)
    assert main(["check-config", "--app", "processing"]) == 0
    assert "readable or writable by other users (mode 0644)" in capsys.readouterr().err


def test_check_config_app_needs_a_key_ring(
    ready_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("WENU_KEYRING_FILE")
    assert main(["check-config"]) == 0  # the settings alone are valid
    capsys.readouterr()
    assert "WENU_KEYRING_FILE" in refused(["check-config", "--app", "processing"], capsys)
