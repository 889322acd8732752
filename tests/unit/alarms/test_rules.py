"""Alarm rules parse strictly, report problems by path and field, and select series."""

from __future__ import annotations

import msgspec
import pytest

from wenu_stream.alarms.rules import (
    ConsumptionRule,
    Match,
    NoDataRule,
    StuckRule,
    ThresholdRule,
    matches,
    parse_rules,
    rule_problems,
)
from wenu_stream.model import SeriesReading

CATALOG_RULES = [
    {"id": "hq-power-high", "series": "acme-hq.main.power", "type": "threshold",
     "op": ">", "value": 50000, "clear": 45000, "for_s": 120, "severity": "critical"},
    {"id": "hq-power-silent", "series": "acme-hq.main.power", "type": "no_data",
     "after_s": 900, "severity": "warning"},
    {"id": "hq-power-jump", "series": "acme-hq.main.power", "type": "rate_of_change",
     "max_abs_delta_per_min": 20000, "severity": "major"},
    {"id": "hq-power-stuck", "series": "acme-hq.main.power", "type": "stuck",
     "count": 30, "severity": "minor"},
    {"id": "hq-daily-energy", "series": "acme-hq.main.energy", "type": "consumption",
     "window": "1d", "max": 800, "severity": "major"},
]  # fmt: skip


def _reading(
    series: str = "s", company: str = "acme", site: str = "hq", unit: str = "W", kind: str = "gauge"
) -> SeriesReading:
    return SeriesReading(
        series=series, company=company, site=site, timezone="UTC", kind=kind, unit=unit,
        device="d", ch="c", seq=1, index=0, t=0, value=0.0, raw_value=0.0,
    )  # fmt: skip


def test_the_catalog_example_parses_into_the_five_types() -> None:
    rules = parse_rules(CATALOG_RULES)
    assert [type(r).__name__ for r in rules] == [
        "ThresholdRule", "NoDataRule", "RateOfChangeRule", "StuckRule", "ConsumptionRule",
    ]  # fmt: skip
    high = rules[0]
    assert isinstance(high, ThresholdRule)
    assert (high.op, high.value, high.clear_level, high.for_s) == (">", 50000.0, 45000.0, 120.0)
    assert all(
        rule_problems(r, "counter" if isinstance(r, ConsumptionRule) else "gauge") == [] for r in rules
    )


def test_rules_encode_back_to_what_was_imported() -> None:
    rules = parse_rules(CATALOG_RULES)
    again = parse_rules(msgspec.json.decode(msgspec.json.encode(rules)))
    assert again == rules
    assert msgspec.to_builtins(rules[1]) == {**CATALOG_RULES[1], "after_s": 900.0}


def test_defaults_clear_is_value_and_for_s_is_zero() -> None:
    (rule,) = parse_rules(
        [{"id": "t", "series": "s", "type": "threshold", "op": "<", "value": 3, "severity": "minor"}]
    )
    assert isinstance(rule, ThresholdRule)
    assert (rule.clear, rule.clear_level, rule.for_s) == (None, 3.0, 0)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"type": "thresold"}, "at `$[1].type`"),
        ({"extra": 1}, "unknown field `extra` - at `$[1]`"),
        ({"severity": "fatal"}, "at `$[1].severity`"),
        ({"op": "=="}, "at `$[1].op`"),
        ({"id": "has space"}, "at `$[1].id`"),
        ({"for_s": -1}, "at `$[1].for_s`"),
        ({"match": {"company": "acme"}}, "exactly one of `series` and `match` - at `$[1]`"),
        ({"series": None}, "exactly one of `series` and `match` - at `$[1]`"),
        ({"series": None, "match": {"colour": "red"}}, "at `$[1].match`"),
    ],
)
def test_an_invalid_rule_is_refused_with_its_json_path(patch: dict[str, object], message: str) -> None:
    good = {"id": "ok", "series": "s", "type": "threshold", "op": ">", "value": 1, "severity": "minor"}
    bad = {k: v for k, v in {**good, **patch}.items() if v is not None}
    with pytest.raises(msgspec.ValidationError, match=message.replace("$", r"\$").replace("[", r"\[")):
        parse_rules([good, bad])


def test_a_missing_field_names_it() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"missing required field `after_s` - at `\$\[0\]`"):
        parse_rules([{"id": "n", "series": "s", "type": "no_data", "severity": "minor"}])


@pytest.mark.parametrize(
    ("rule", "kind", "problem"),
    [
        (
            {"type": "consumption", "window": "1h", "max": 5},
            "gauge",
            "series: consumption needs a counter series",
        ),
        ({"type": "consumption", "window": "1h", "max": -1}, "counter", "max: must be a finite number >= 0"),
        ({"type": "stuck", "count": 1}, "gauge", "count: must be at least 2"),
        (
            {"type": "threshold", "op": ">", "value": 10, "clear": 12},
            "gauge",
            "clear: must be at or below value",
        ),
        (
            {"type": "threshold", "op": "<=", "value": 10, "clear": 8},
            "gauge",
            "clear: must be at or above value",
        ),
        ({"type": "threshold", "op": ">", "value": float("nan")}, "gauge", "value: must be a finite number"),
        ({"type": "no_data", "after_s": 60}, None, "series: 's' is not a series of the catalog"),
    ],
)
def test_semantic_problems_name_the_field(rule: dict[str, object], kind: str | None, problem: str) -> None:
    (parsed,) = parse_rules([{"id": "r", "series": "s", "severity": "minor", **rule}])
    problems = rule_problems(parsed, kind)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_a_consumption_match_must_select_counters() -> None:
    base = {"id": "r", "type": "consumption", "window": "1d", "max": 5, "severity": "minor"}
    (loose, strict) = parse_rules(
        [{**base, "match": {"site": "hq"}}, {**base, "match": {"site": "hq", "kind": "counter"}}]
    )
    assert rule_problems(loose, None) == [
        'match: consumption needs counter series; add "kind": "counter" to match'
    ]
    assert rule_problems(strict, None) == []


def test_hysteresis_on_the_right_side_is_fine() -> None:
    rules = parse_rules([
        {"id": "a", "series": "s", "type": "threshold", "op": ">=", "value": 10, "clear": 9, "severity": "minor"},
        {"id": "b", "series": "s", "type": "threshold", "op": "<", "value": 10, "clear": 11, "severity": "minor"},
    ])  # fmt: skip
    assert [rule_problems(r, "gauge") for r in rules] == [[], []]


def test_a_series_rule_matches_its_series_only() -> None:
    rule = NoDataRule(id="n", severity="minor", series="s", after_s=5)
    assert matches(rule, _reading(series="s"))
    assert not matches(rule, _reading(series="t"))


def test_every_match_field_must_hold_and_absent_ones_match_anything() -> None:
    rule = StuckRule(id="x", severity="minor", match=Match(company="acme", kind="gauge"), count=3)
    assert matches(rule, _reading(series="any", site="elsewhere", unit="kWh"))
    assert not matches(rule, _reading(kind="counter"))
    assert not matches(rule, _reading(company="other"))
    everything = StuckRule(id="y", severity="minor", match=Match(), count=3)
    assert matches(everything, _reading(company="z", site="z", unit="z", kind="counter"))
