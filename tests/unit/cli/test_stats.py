"""`wenu-stream stats query` refuses bad flags with exit code 2, naming the flag and the fix, before any call."""

from __future__ import annotations

import pytest

from wenu_stream.cli.main import main

GOOD = ["stats", "query", "--series", "acme-hq.main.power", "--window", "1d",
        "--from", "2026-10-01T00:00:00+02:00", "--to", "2026-11-01T00:00:00+01:00"]  # fmt: skip


def with_flag(flag: str, value: str) -> list[str]:
    args = list(GOOD)
    args[args.index(flag) + 1] = value
    return args


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("--series", "acme hq", "--series: 'acme hq' is not a series id"),
    ("--from", "last tuesday", "--from: 'last tuesday' is not a time"),
    ("--to", "next week", "--to: 'next week' is not a time"),
    ("--to", "2026-09-01T00:00:00Z", "--to: it is not after --from"),
])  # fmt: skip
def test_bad_flag_exits_2_naming_it_and_the_fix(flag: str, value: str, words: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert main(with_flag(flag, value)) == 2
    out = capsys.readouterr()
    assert words in out.err and "Fix:" in out.err
    assert out.out == ""


def test_an_unknown_window_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(with_flag("--window", "2h"))
    assert exc.value.code == 2
    assert "--window" in capsys.readouterr().err
