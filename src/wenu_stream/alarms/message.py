"""Alarm notifications people can read: a subject, an e-mail text and an SMS line per transition (pure).

The JSON body (``engine.Notification``) stays what machines receive (SQS, Lambda, HTTP subscribers);
these are the per-protocol texts SNS sends to people (``MessageStructure=json``):

- subject (e-mail): ``[major] voltage-jump firing on acme-plant.v1 at acme-plant``, at most 100 characters;
- e-mail: what fired, where, when in the site's own time zone, the value and the rule's condition with
  units, and a link to the backoffice's alarm console for the site;
- SMS: one line of at most 140 characters.

Nothing here reads a clock or the catalog store: the caller passes the series' catalog entry and the
rule (either may be None when the catalog no longer has them; the texts then say less, never fail).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from wenu_stream.alarms.engine import Notification
from wenu_stream.alarms.rules import (
    AlarmRule,
    ConsumptionRule,
    NoDataRule,
    RateOfChangeRule,
    StuckRule,
    ThresholdRule,
)
from wenu_stream.catalog.directory import ChannelInfo

SUBJECT_MAX = 100  # SNS's limit for a subject
SMS_MAX = 140
_OPS = {">": "above", ">=": "at or above", "<": "below", "<=": "at or below", "==": "equal to", "!=": "not"}


class Readable(msgspec.Struct, frozen=True, kw_only=True):
    """The texts of one notification for people."""

    subject: str
    email: str
    sms: str


def readable(
    note: Notification,
    *,
    series: ChannelInfo | None = None,
    rule: AlarmRule | None = None,
    link_base: str = "",
) -> Readable:
    """Render ``note`` for people; ``series`` and ``rule`` from the catalog add units, zone and condition."""
    firing = note.state == "firing"
    what = "firing" if firing else "resolved"
    unit = f" {series.unit}" if series is not None and series.unit else ""
    zone = series.timezone if series is not None else "UTC"
    local = _local_time(note.at, zone)
    value = "no value" if note.value is None else f"{_number(note.value)}{unit}"
    subject = _clip(f"[{note.severity}] {note.rule} {what} on {note.series} at {note.site}", SUBJECT_MAX)
    lines = [
        f"Alarm {note.rule} is {what} on {note.series} (site {note.site}, company {note.company}).",
        f"Severity: {note.severity}",
        f"Reading time: {local}",
        f"Value: {value}",
    ]
    if rule is not None:
        lines.append(f"Condition: {condition(rule, unit)}")
    if link_base:
        lines.append(f"Alarm console: {link_base.rstrip('/')}/ui/alarms?site={note.site}")  # ids are URL-safe
    lines.append(f"Transition id: {note.transition_id}")
    short_time = local.split(" ", 1)[1] if " " in local else local
    sms = _clip(f"[{note.severity}] {note.rule} {what} {note.series} {value} at {short_time}", SMS_MAX)
    return Readable(subject=subject, email="\n".join(lines) + "\n", sms=sms)


def condition(rule: AlarmRule, unit: str = "") -> str:
    """The rule's condition in words, with the series' unit (`` V``, or empty)."""
    match rule:
        case ThresholdRule():
            held = f" for {_number(rule.for_s)} s" if rule.for_s else ""
            clears = f", resolves past {_number(rule.clear_level)}{unit}" if rule.clear is not None else ""
            return f"{_OPS.get(rule.op, rule.op)} {_number(rule.value)}{unit}{held}{clears}"
        case NoDataRule():
            return f"no reading for {_number(rule.after_s)} s"
        case RateOfChangeRule():
            return f"changes faster than {_number(rule.max_abs_delta_per_min)}{unit} per minute"
        case StuckRule():
            return f"{rule.count} identical readings in a row"
        case ConsumptionRule():
            return f"more than {_number(rule.max)}{unit} per {rule.window}"
    return type(rule).__name__  # a rule type added later still renders


def _local_time(at_ms: int, zone: str) -> str:
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz, zone = ZoneInfo("UTC"), "UTC"
    local = datetime.fromtimestamp(at_ms / 1000, tz=UTC).astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} ({zone})"


def _number(value: float) -> str:
    return f"{value:g}"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line: SNS refuses control characters in a subject
    return text if len(text) <= limit else text[: limit - 3] + "..."  # ASCII: SNS subjects allow nothing else
