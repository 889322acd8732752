"""The MultiLangDaemon properties files are checked before the daemon starts; local variants are rendered."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from wenu_stream.drivers.kcl.properties import (
    check_properties,
    local_overrides,
    parse_properties,
    render_properties,
)

ROOT = Path(__file__).resolve().parents[2]
APPS = ("alarms", "processing")


@pytest.mark.parametrize("app", APPS)
def test_shipped_properties_pass_the_check(app: str) -> None:
    assert check_properties(ROOT / "properties" / f"{app}.properties", cwd=ROOT) == []


@pytest.mark.parametrize("app", APPS)
def test_shipped_properties_poll_explicitly_and_name_the_lease_table(app: str) -> None:
    props = parse_properties((ROOT / "properties" / f"{app}.properties").read_text())
    assert props["applicationName"] == f"wenu-{app}"
    assert props["retrievalMode"] == "POLLING"
    assert props["streamName"] == "readings"
    assert props["awsCredentialsProvider"] == "DefaultCredentialsProvider"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "app.properties"
    path.write_text(text)
    return path


def valid_text() -> str:
    return (ROOT / "properties" / "alarms.properties").read_text()


def test_an_unknown_key_is_reported_because_the_daemon_ignores_it(tmp_path: Path) -> None:
    problems = check_properties(
        write(tmp_path, valid_text() + "kinesisClientEndpoint = http://127.0.0.1:1\n"), ROOT
    )
    assert len(problems) == 1 and "kinesisClientEndpoint: unknown setting" in problems[0]


def test_a_missing_executable_is_reported(tmp_path: Path) -> None:
    text = valid_text().replace("consumers/alarms.py", "consumers/nope.py")
    (problem,) = check_properties(write(tmp_path, text), ROOT)
    assert problem.endswith(
        "executableName: script 'consumers/nope.py' not found from "
        f"{ROOT} (fix: run the daemon from the repository root)"
    )


def test_a_missing_interpreter_is_reported(tmp_path: Path) -> None:
    text = valid_text().replace("python3 consumers", "no-such-python3 consumers")
    (problem,) = check_properties(write(tmp_path, text), ROOT)
    assert "executableName: 'no-such-python3' is not an executable file" in problem


@pytest.mark.parametrize(
    ("find", "replace", "setting"),
    [
        ("retrievalMode = POLLING", "retrievalMode = DEFAULT", "retrievalMode"),
        ("maxRecords = 2000", "maxRecords = 20000", "maxRecords"),
        ("timeoutInSeconds = 300", "timeoutInSeconds = soon", "timeoutInSeconds"),
        (
            "initialPositionInStream = TRIM_HORIZON",
            "initialPositionInStream = OLDEST",
            "initialPositionInStream",
        ),
        ("applicationName = wenu-alarms", "", "applicationName"),
    ],
)
def test_a_bad_or_missing_value_names_the_setting(
    tmp_path: Path, find: str, replace: str, setting: str
) -> None:
    assert find in valid_text()
    (problem,) = check_properties(write(tmp_path, valid_text().replace(find, replace)), ROOT)
    assert f": {setting}: " in problem and "fix:" in problem


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    (problem,) = check_properties(tmp_path / "absent.properties")
    assert "no such properties file" in problem


def test_parse_handles_comments_separators_and_continuations() -> None:
    props = parse_properties("# c\n! c\na=1\nb : two\nawscredentialsprovider = X\nlong = x \\\n   y\n")
    assert props == {"a": "1", "b": "two", "awsCredentialsProvider": "X", "long": "x y"}


def test_local_rendering_sets_endpoints_and_this_interpreter_and_still_checks(tmp_path: Path) -> None:
    overrides = local_overrides(
        "processing",
        kinesis_url="http://127.0.0.1:4567",
        dynamodb_url="http://127.0.0.1:5000",
        region="us-east-1",
        root=ROOT,
        python=sys.executable,
    )
    text = render_properties("processing", overrides, root=ROOT)
    props = parse_properties(text)
    assert props["kinesisEndpoint"] == "http://127.0.0.1:4567"
    assert props["dynamoDBEndpoint"] == "http://127.0.0.1:5000"
    assert props["regionName"] == "us-east-1"
    assert props["executableName"] == f"{sys.executable} {ROOT / 'consumers' / 'processing.py'}"
    assert text.count("\nregionName = ") == 1  # replaced in place, not appended
    assert check_properties(write(tmp_path, text), cwd=tmp_path) == []
