"""``wenu-stream catalog import`` and ``export`` through the real command line, on SQLite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.catalog import spec_document
from wenu_stream.catalog.store import CatalogStore
from wenu_stream.cli.main import main


def write(path: Path, raw: Any) -> str:
    path.write_text(json.dumps(raw), encoding="utf-8")
    return str(path)


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("WENU_CATALOG_URL", raising=False)
    return f"sqlite:///{tmp_path}/c.db"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_prints_a_summary_and_a_second_import_changes_nothing(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "catalog.json", spec_document())
    code, out, _ = run(capsys, "catalog", "import", file, "--catalog", url)
    assert code == 0
    first = json.loads(out)
    assert (first["added"], first["changed"], first["version"]) == (10, 10, 1)
    code, out, _ = run(capsys, "catalog", "import", file, "--catalog", url)
    assert code == 0 and json.loads(out) == {
        "added": 0,
        "updated": 0,
        "retired": 0,
        "changed": 0,
        "version": 1,
        "tables": {},
    }


def test_export_writes_a_document_that_reimports_to_no_change(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WENU_CATALOG_URL", url)  # the env var instead of the flag
    run(capsys, "catalog", "import", write(tmp_path / "in.json", spec_document()))
    code, out, err = run(capsys, "catalog", "export")
    assert code == 0 and err == ""
    exported = json.loads(out)
    assert exported["companies"] == spec_document()["companies"]
    assert sorted(r["id"] for r in exported["alarm_rules"]) == sorted(
        r["id"] for r in spec_document()["alarm_rules"]
    )
    code, out, _ = run(capsys, "catalog", "import", write(tmp_path / "out.json", exported))
    assert code == 0 and json.loads(out)["changed"] == 0


def test_an_invalid_document_exits_2_with_every_problem_and_writes_nothing(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "catalog", "import", write(tmp_path / "good.json", spec_document()), "--catalog", url)
    bad = spec_document()
    bad["companies"][0]["sites"][0]["timezone"] = "Mars/Base"
    bad["companies"][0]["sites"][0]["devices"][0]["channels"].pop()  # would retire a channel if imported
    bad["alarm_rules"][1]["severity"] = "loud"
    code, out, err = run(capsys, "catalog", "import", write(tmp_path / "bad.json", bad), "--catalog", url)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith("$.companies[0].sites[0].timezone: unknown time zone 'Mars/Base'")
    assert lines[1].startswith("$.alarm_rules[1].severity: ")
    assert lines[2].startswith("$.alarm_rules[4].series: 'acme-hq.main.energy' is not a series")
    assert lines[3] == "catalog import: 3 problems; nothing was imported"
    with CatalogStore(url) as store:
        assert store.version() == 1
        assert len(store.export_document().companies[0].sites[0].devices[0].channels) == 2


def test_warnings_go_to_stderr_and_the_import_proceeds(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = spec_document()
    raw["alarm_rules"].append(
        {"id": "water", "match": {"unit": "m3"}, "type": "stuck", "count": 4, "severity": "minor"}
    )
    code, out, err = run(capsys, "catalog", "import", write(tmp_path / "c.json", raw), "--catalog", url)
    assert code == 0 and json.loads(out)["version"] == 1
    assert (
        err.strip() == "warning: $.alarm_rules[5].match: selects no series of the catalog (check its values)"
    )


@pytest.mark.parametrize("bad_url", ["mysql://x/y", "sqlite:///", "catalog.db"])
def test_a_bad_url_exits_2_naming_flag_env_and_fix_before_reading_the_file(
    bad_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "catalog", "import", "/nonexistent.json", "--catalog", bad_url)
    assert code == 2 and out == ""
    assert "--catalog" in err and "WENU_CATALOG_URL" in err and "Fix: use sqlite:///" in err


def test_an_unreachable_postgresql_exits_2(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, err = run(capsys, "catalog", "export", "--catalog", "postgresql://nobody@127.0.0.1:1/x")
    assert code == 2 and out == ""
    assert "cannot reach the PostgreSQL catalog" in err and "WENU_CATALOG_URL" in err


def test_a_missing_file_exits_2(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, _, err = run(capsys, "catalog", "import", "/nonexistent.json", "--catalog", url)
    assert code == 2 and "cannot read '/nonexistent.json'" in err
