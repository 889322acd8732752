"""Bad flags of `wenu-stream alarms` exit 2 with the flag and the fix, before touching any store."""

from __future__ import annotations

import pytest

from wenu_stream.cli.main import main


def exit_code(argv: list[str]) -> int:
    """What the process would exit with: argparse exits itself, our own checks return the code."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize(("argv", "flag"), [
    (["alarms", "list", "--state", "burning"], "--state"),
    (["alarms", "list", "--format", "xml"], "--format"),
    (["alarms", "list", "--company", "acme corp"], "--company"),
    (["alarms", "history"], "--series"),
    (["alarms", "history", "--series", "a/b"], "--series"),
])  # fmt: skip
def test_a_bad_flag_exits_2_naming_it_and_the_fix(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AWS_ENDPOINT_URL", "http://127.0.0.1:9"
    )  # nothing listens: touching a store would fail
    assert exit_code(argv) == 2
    out, err = capsys.readouterr()
    assert flag in err and "Fix:" in err
    assert out == ""
