"""Configuration: flag > WENU_* > default; typos and out-of-range values name the setting and the fix."""

from __future__ import annotations

import pytest

from wenu_stream.cli.main import main
from wenu_stream.config import load_config
from wenu_stream.errors import ConfigError


def test_precedence_flag_over_env_over_default() -> None:
    assert load_config({}).kinesis.stream == "readings"
    assert load_config({"WENU_KINESIS_STREAM": "env"}).kinesis.stream == "env"
    assert load_config({"WENU_KINESIS_STREAM": "env"}, {"kinesis.stream": "flag"}).kinesis.stream == "flag"


def test_lease_table_follows_the_app() -> None:
    assert load_config({"WENU_APP": "alarms"}).lease_table == "wenu-alarms"


def test_unknown_variable_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as err:
        load_config({"WENU_KINESIS_STREEM": "x"})
    assert err.value.field == "WENU_KINESIS_STREEM" and "unknown" in err.value.problem


def test_out_of_range_names_the_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load_config({"WENU_KINESIS_MAX_RECORDS": "20000"})
    assert "WENU_KINESIS_MAX_RECORDS" in str(err.value) and "<= 10000" in str(err.value)


def test_cli_exits_2_on_bad_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WENU_APP", "billing")
    assert main(["check-config"]) == 2
    assert "WENU_APP" in capsys.readouterr().err


def test_cli_exits_2_on_bad_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["provision", "--shards", "many"])
    assert exit_.value.code == 2
    assert "--shards" in capsys.readouterr().err


def test_check_config_masks_database_passwords() -> None:
    from wenu_stream.config import redacted

    config = load_config({"WENU_CATALOG_URL": "postgresql://wenu:s3cret@db.internal:5432/catalog"})
    assert redacted(config)["catalog"]["url"] == "postgresql://wenu:***@db.internal:5432/catalog"
