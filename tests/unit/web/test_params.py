"""Times in the API's query parameters follow the CLI's one parser (wenu_stream.timeparse)."""

from __future__ import annotations

import pytest
from litestar.exceptions import ValidationException

from wenu_stream.web.params import parse_time

NOW = 1_790_000_000_000  # 2026-09-21T14:13:20Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-25T00:00:00+02:00", 1_792_879_200_000),
        ("2026-10-25T00:00:00 02:00", 1_792_879_200_000),  # a '+' that arrived as a space
        ("2026-10-24T22:00:00", 1_792_879_200_000),  # no offset: UTC, as the CLI takes it
        ("2026-10-24T22:00:00Z", 1_792_879_200_000),
        ("now", NOW),
        ("-24h", NOW - 86_400_000),
        ("+15m", NOW + 900_000),
        (None, None),
    ],
)
def test_accepted_forms(text: str | None, expected: int | None) -> None:
    assert parse_time("from", text, NOW) == expected


def test_anything_else_is_a_400_naming_the_parameter() -> None:
    with pytest.raises(ValidationException) as caught:
        parse_time("to", "yesterday-ish", NOW)
    assert "to: 'yesterday-ish' is not a time" in str(caught.value.detail)
