"""Notifications people can read: subject, e-mail and SMS texts of a transition (alarms.message)."""

from __future__ import annotations

import pytest

from wenu_stream.alarms.engine import Notification
from wenu_stream.alarms.message import SMS_MAX, SUBJECT_MAX, condition, readable
from wenu_stream.alarms.rules import parse_rules
from wenu_stream.catalog.directory import ChannelInfo

AT = 1_764_300_000_000  # 2025-11-28T03:20:00Z, 04:20 in Paris (CET)
NOTE = Notification(
    rule="voltage-jump", series="acme-plant.v1", company="acme", site="acme-plant", severity="major",
    state="firing", value=242.7, at=AT, transition_id="0123456789abcdef0123456789abcdef",
)  # fmt: skip
VOLTS = ChannelInfo(
    series="acme-plant.v1", company="acme", site="acme-plant", timezone="Europe/Paris", kind="gauge", unit="V",
    scale=1.0, offset=0.0,
)  # fmt: skip
(THRESHOLD, NO_DATA, RATE, STUCK, CONSUMPTION) = parse_rules([
    {"type": "threshold", "id": "voltage-jump", "severity": "major", "series": "acme-plant.v1", "op": ">",
     "value": 240, "clear": 238, "for_s": 60},
    {"type": "no_data", "id": "n", "severity": "minor", "series": "s", "after_s": 900},
    {"type": "rate_of_change", "id": "r", "severity": "minor", "series": "s", "max_abs_delta_per_min": 5},
    {"type": "stuck", "id": "k", "severity": "minor", "series": "s", "count": 6},
    {"type": "consumption", "id": "c", "severity": "minor", "series": "s", "window": "1d", "max": 120},
])  # fmt: skip


def test_a_firing_threshold_reads_in_the_sites_zone_with_units_condition_and_link() -> None:
    text = readable(NOTE, series=VOLTS, rule=THRESHOLD, link_base="https://wenu.example.com/")
    assert text.subject == "[major] voltage-jump firing on acme-plant.v1 at acme-plant"
    assert text.email.splitlines() == [
        "Alarm voltage-jump is firing on acme-plant.v1 (site acme-plant, company acme).",
        "Severity: major",
        "Reading time: 2025-11-28 04:20:00 CET (Europe/Paris)",
        "Value: 242.7 V",
        "Condition: above 240 V for 60 s, resolves past 238 V",
        "Alarm console: https://wenu.example.com/ui/alarms?site=acme-plant",
        "Transition id: 0123456789abcdef0123456789abcdef",
    ]
    assert text.sms == "[major] voltage-jump firing acme-plant.v1 242.7 V at 04:20:00 CET (Europe/Paris)"


def test_a_resolution_without_catalog_entry_still_reads_in_utc_without_condition_or_link() -> None:
    """The catalog may have dropped the series or the rule since: the text says less, it never fails."""
    text = readable(Notification(**{**_fields(NOTE), "state": "ok", "value": None}))
    assert text.subject == "[major] voltage-jump resolved on acme-plant.v1 at acme-plant"
    assert "Reading time: 2025-11-28 03:20:00 UTC (UTC)" in text.email
    assert "Value: no value" in text.email
    assert "Condition:" not in text.email and "Alarm console:" not in text.email


def test_subject_and_sms_are_clipped_to_the_sns_limits_on_one_ascii_line() -> None:
    long = Notification(**{**_fields(NOTE), "series": "s" * 120, "site": "x\ny"})
    text = readable(long, series=None, rule=None)
    assert len(text.subject) <= SUBJECT_MAX and text.subject.endswith("...") and text.subject.isascii()
    assert "\n" not in text.subject and len(text.sms) <= SMS_MAX


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        (NO_DATA, "no reading for 900 s"),
        (RATE, "changes faster than 5 V per minute"),
        (STUCK, "6 identical readings in a row"),
        (CONSUMPTION, "more than 120 V per 1d"),
    ],
)
def test_every_rule_type_has_its_condition_in_words(rule: object, words: str) -> None:
    assert condition(rule, " V") == words  # type: ignore[arg-type]


def test_an_unknown_zone_falls_back_to_utc() -> None:
    broken = ChannelInfo(**{**_fields(VOLTS), "timezone": "Mars/Olympus"})
    assert "Reading time: 2025-11-28 03:20:00 UTC (UTC)" in readable(NOTE, series=broken).email


def _fields(struct: object) -> dict[str, object]:
    import msgspec

    return msgspec.structs.asdict(struct)  # type: ignore[arg-type]
