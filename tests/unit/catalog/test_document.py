"""Validation of the catalog document: each kind of problem, all at once, by JSON path."""

from __future__ import annotations

import msgspec
import pytest

from tests.support.catalog import spec_document
from wenu_stream.alarms.rules import ConsumptionRule, ThresholdRule
from wenu_stream.catalog.document import CatalogDocument, Problem, decode, encode, validate

SITE = "$.companies[0].sites[0]"
CH0 = f"{SITE}.devices[0].channels[0]"


def problems_of(raw: object) -> list[str]:
    result = validate(raw)
    assert result.document is None
    return [str(p) for p in result.problems]


def test_the_spec_example_is_valid_and_typed() -> None:
    result = validate(spec_document())
    assert result.problems == () and result.warnings == ()
    assert isinstance(result.document, CatalogDocument)
    assert result.document.companies[0].sites[0].devices[0].channels[1].kind == "counter"
    assert isinstance(result.document.alarm_rules[0], ThresholdRule)
    assert isinstance(result.document.alarm_rules[4], ConsumptionRule)


def test_defaults_fill_optional_fields() -> None:
    doc = {
        "companies": [
            {
                "id": "c",
                "sites": [
                    {
                        "id": "s",
                        "timezone": "UTC",
                        "devices": [{"id": "d", "channels": [{"ch": "x", "series": "c.x", "kind": "gauge"}]}],
                    }
                ],
            }
        ]
    }
    result = validate(doc)
    assert result.document is not None
    channel = result.document.companies[0].sites[0].devices[0].channels[0]
    assert (channel.unit, channel.scale, channel.offset) == ("", 1.0, 0.0)
    assert result.document.alarm_rules == []


def test_unknown_time_zone_is_named_with_its_path() -> None:
    doc = spec_document()
    doc["companies"][0]["sites"][0]["timezone"] = "Mars/Base"
    assert problems_of(doc) == [
        f"{SITE}.timezone: unknown time zone 'Mars/Base': use an IANA name such as 'America/Santiago'"
    ]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("ch", "", "invalid id ''"),
        ("series", "a b", "invalid id 'a b'"),
        ("series", "x" * 129, "invalid id"),
        ("series", 7, "expected a string id, got a number"),
        ("kind", "gaug", "invalid kind 'gaug': use 'gauge' or 'counter'"),
        ("scale", "2", "expected a number, got a string"),
        ("offset", True, "expected a number, got a boolean"),
        ("scale", float("inf"), "must be a finite number"),
        ("unit", 3, "expected a string, got a number"),
        ("colour", "red", "unknown field; known fields: ch, series, kind, unit, scale, offset"),
    ],
)
def test_bad_channel_field(field: str, value: object, expected: str) -> None:
    doc = spec_document()
    doc["companies"][0]["sites"][0]["devices"][0]["channels"][0][field] = value
    problems = problems_of(doc)
    assert problems[0].startswith(f"{CH0}.{field}: {expected}")
    # A renamed series also leaves the rules on the old name pointing nowhere; nothing else is reported.
    assert all(p.startswith("$.alarm_rules[") and "is not a series" in p for p in problems[1:])
    assert len(problems) == (5 if field == "series" else 1)


def test_an_id_of_128_characters_is_accepted() -> None:
    doc = spec_document()
    doc["companies"][0]["id"] = "a" * 128
    assert validate(doc).problems == ()


def test_missing_required_fields() -> None:
    doc = spec_document()
    del doc["companies"][0]["sites"][0]["timezone"]
    del doc["companies"][0]["sites"][0]["devices"][0]["channels"][1]["kind"]
    assert problems_of(doc) == [
        f"{SITE}.timezone: missing required field",
        f"{SITE}.devices[0].channels[1].kind: missing required field",
    ]


def test_duplicates_point_at_the_first_occurrence() -> None:
    doc = spec_document()
    site = doc["companies"][0]["sites"][0]
    site["devices"].append(
        {"id": "EM-000001", "channels": [{"ch": "x", "series": "acme-hq.main.power", "kind": "gauge"}]}
    )
    site["devices"][0]["channels"].append({"ch": "energy_kwh", "series": "other", "kind": "counter"})
    doc["companies"].append({"id": "acme", "sites": [{"id": "acme-hq", "timezone": "UTC"}]})
    doc["alarm_rules"].append(dict(doc["alarm_rules"][0]))
    assert problems_of(doc) == [
        (
            f"{SITE}.devices[0].channels[2].ch: duplicate channel 'energy_kwh' of device 'EM-000001'"
            f" (first at {SITE}.devices[0].channels[1].ch)"
        ),
        f"{SITE}.devices[1].id: duplicate device id 'EM-000001' (first at {SITE}.devices[0].id)",
        f"{SITE}.devices[1].channels[0].series: duplicate series 'acme-hq.main.power' (first at {CH0}.series)",
        "$.companies[1].id: duplicate company id 'acme' (first at $.companies[0].id)",
        f"$.companies[1].sites[0].id: duplicate site id 'acme-hq' (first at {SITE}.id)",
        "$.alarm_rules[5].id: duplicate rule id 'hq-power-high' (first at $.alarm_rules[0].id)",
    ]


def test_rule_problems_carry_the_rule_path() -> None:
    doc = spec_document()
    rules = doc["alarm_rules"]
    rules[0]["type"] = "thresold"
    rules[1]["series"] = "acme-hq.nothing"
    rules[2].pop("max_abs_delta_per_min")
    rules[4]["series"] = "acme-hq.main.power"  # consumption on a gauge
    rules[3]["match"] = {"site": "acme-hq"}  # both series and match
    assert problems_of(doc) == [
        (
            "$.alarm_rules[0].type: invalid value 'thresold': use one of threshold, no_data, rate_of_change,"
            " stuck, consumption"
        ),
        "$.alarm_rules[1].series: 'acme-hq.nothing' is not a series of the catalog; name an existing series",
        "$.alarm_rules[2]: Object missing required field `max_abs_delta_per_min`",
        "$.alarm_rules[3]: a rule needs exactly one of `series` and `match`",
        "$.alarm_rules[4].series: consumption needs a counter series, 'acme-hq.main.power' is a gauge",
    ]


def test_a_match_that_selects_nothing_is_a_warning_not_an_error() -> None:
    doc = spec_document()
    doc["alarm_rules"].append(
        {"id": "any-water", "match": {"unit": "m3"}, "type": "stuck", "count": 5, "severity": "minor"}
    )
    result = validate(doc)
    assert result.document is not None
    assert result.warnings == (
        Problem("$.alarm_rules[5].match", "selects no series of the catalog (check its values)"),
    )


def test_a_match_that_selects_a_series_is_silent() -> None:
    doc = spec_document()
    doc["alarm_rules"].append(
        {
            "id": "acme-stuck",
            "match": {"company": "acme", "unit": "W"},
            "type": "stuck",
            "count": 5,
            "severity": "minor",
        }
    )
    assert validate(doc).warnings == ()


def test_every_problem_at_once_and_no_document() -> None:
    doc = spec_document()
    doc["companies"][0]["sites"][0]["timezone"] = "Mars/Base"
    doc["companies"][0]["sites"][0]["devices"][0]["channels"][0]["kind"] = "meter"
    doc["companies"].append("not an object")
    doc["alarm_rules"][0]["severity"] = "apocalyptic"
    doc["extra"] = 1
    paths = [p.split(": ")[0] for p in problems_of(doc)]
    assert paths == [
        "$.extra",
        f"{SITE}.timezone",
        f"{CH0}.kind",
        "$.companies[1]",
        "$.alarm_rules[0].severity",
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], ["$: expected an object, got an array"]),
        ({}, ["$.companies: missing required field"]),
        ({"companies": {}}, ["$.companies: expected an array, got an object"]),
        ({"companies": [], "alarm_rules": None}, ["$.alarm_rules: expected an array, got null"]),
    ],
)
def test_bad_top_level(raw: object, expected: list[str]) -> None:
    assert problems_of(raw) == expected


def test_malformed_json_is_one_problem() -> None:
    result = decode(b'{"companies": [')
    assert result.document is None
    assert len(result.problems) == 1 and result.problems[0].path == "$"
    assert result.problems[0].message.startswith("not valid JSON")


def test_encode_then_decode_gives_the_same_document() -> None:
    document = validate(spec_document()).document
    assert document is not None
    again = decode(encode(document))
    assert again.document == document
    assert msgspec.json.decode(encode(document))["alarm_rules"][0]["type"] == "threshold"
