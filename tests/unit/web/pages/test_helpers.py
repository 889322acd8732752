"""The backoffice's pure helpers: forms to rules and back, problems to fields, noise counts, times, safe redirects."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support.catalog import spec_document
from wenu_stream.catalog.changes import flatten
from wenu_stream.catalog.document import validate
from wenu_stream.web.pages.alarm_pages import count_noise
from wenu_stream.web.pages.catalog_pages import coerce, search
from wenu_stream.web.pages.common import by_field, chart_spec, field_of, local_input_to_iso
from wenu_stream.web.pages.oidc import challenge_of
from wenu_stream.web.pages.render import local_time, zone_label
from wenu_stream.web.pages.rule_pages import check_rule, form_from_rule, rule_from_form
from wenu_stream.web.pages.session import safe_next

DOC = validate(spec_document()).document
assert DOC is not None
HIGH = {"type": "threshold", "id": "hq-power-high", "severity": "critical", "series": "acme-hq.main.power",
        "op": ">", "value": 50000, "clear": 45000, "for_s": 120}  # fmt: skip


def test_a_rule_survives_the_form_both_ways_and_empty_optionals_are_left_out() -> None:
    assert rule_from_form(form_from_rule(HIGH)) == HIGH
    form = form_from_rule(HIGH) | {"clear": "", "for_s": "1.5"}
    assert rule_from_form(form) == {k: v for k, v in HIGH.items() if k != "clear"} | {"for_s": 1.5}
    match = rule_from_form({"type": "no_data", "id": "quiet", "severity": "warning", "target": "match",
                            "match_company": "acme", "match_kind": " ", "after_s": "900"})  # fmt: skip
    assert match == {"type": "no_data", "id": "quiet", "severity": "warning", "match": {"company": "acme"},
                     "after_s": 900}  # fmt: skip


def test_rule_problems_land_on_their_fields_and_a_number_typed_as_text_is_reported_not_dropped() -> None:
    at, rest = check_rule(DOC, HIGH | {"clear": 60000}, existing=True)
    assert list(at) == ["clear"] and "at or below value" in at["clear"][0] and rest == []
    at, _ = check_rule(DOC, HIGH | {"value": "lots"}, existing=True)
    assert "value" in at
    at, _ = check_rule(DOC, HIGH | {"id": "hq-power-jump"}, existing=False)
    assert "id" in at  # a new rule may not take an existing id
    assert check_rule(DOC, HIGH | {"value": 30000, "clear": 25000, "for_s": 0}, existing=True) == ({}, [])


def test_field_of_reads_the_last_name_of_a_json_path() -> None:
    assert field_of("$.operations[0].value.clear") == "clear"
    assert field_of("$.operations[2].csv[line 3].kind") == "kind"
    assert field_of("$") is None
    at, rest = by_field(
        ["$.operations[0].set.scale: expected a number", "$.operations[0]: unknown id"], {"scale"}
    )
    assert at == {"scale": ["expected a number"]} and rest == ["$.operations[0]: unknown id"]


def test_search_finds_ids_and_field_values_case_insensitively() -> None:
    entities = flatten(spec_document())
    found = search(entities, "SANTIAGO", None)
    assert [k for k, _ in found["site"]] == ["acme-hq"] and found["rule"] == []
    assert [k for k, _ in search(entities, "", "channel")["channel"]] == [
        "EM-000001/active_power_w", "EM-000001/energy_kwh"]  # fmt: skip
    assert coerce("scale", "2.5") == 2.5 and coerce("count", "3") == 3 and coerce("unit", " kWh ") == "kWh"
    assert coerce("scale", "x") == "x"  # left for validation to name


def test_noise_counts_transitions_per_rule_per_local_day_noisiest_first() -> None:
    at = lambda text: int(dt.datetime.fromisoformat(text).timestamp() * 1000)  # noqa: E731
    transitions = [
        {
            "at": at("2026-12-04T02:00:00+00:00"),
            "rule": "a",
            "series": "s1",
            "to_state": "firing",
        },  # Dec 3 in Santiago
        {"at": at("2026-12-04T12:00:00+00:00"), "rule": "a", "series": "s1", "to_state": "ok"},
        {"at": at("2026-12-04T12:00:00+00:00"), "rule": "b", "series": "s2", "to_state": "firing"},
    ]
    rows = count_noise(transitions, {"s1": "America/Santiago", "s2": "UTC"}, ["2026-12-03", "2026-12-04"])
    assert rows == [
        {"rule": "a", "per_day": [1, 1], "total": 2, "firings": 1, "series": 1},
        {"rule": "b", "per_day": [0, 1], "total": 1, "firings": 1, "series": 1},
    ]


def test_times_are_shown_and_read_in_the_site_zone() -> None:
    ms = int(dt.datetime(2026, 12, 4, 15, 0, tzinfo=dt.UTC).timestamp() * 1000)
    assert local_time(ms, "America/Santiago") == "2026-12-04 12:00:00"
    assert local_time("2026-12-04T15:00:00+00:00", "Europe/Madrid", seconds=False) == "2026-12-04 16:00"
    assert local_input_to_iso("2026-07-01T08:00", "Europe/Madrid") == "2026-07-01T08:00:00+02:00"
    assert local_input_to_iso("", "UTC") is None
    assert zone_label("Europe/Madrid", ms) == "Europe/Madrid (CET)"


def test_chart_data_is_mean_min_max_for_gauges_and_consumption_bars_for_counters() -> None:
    rows = [{"start": "2026-12-04T12:00:00-03:00", "mean": 2.0, "min": 1.0, "max": 3.0, "consumption": 4.0}]
    gauge = chart_spec(rows, "gauge", "W", "America/Santiago")
    assert [s["label"] for s in gauge["series"]] == ["mean", "min", "max"] and gauge["x"] == [
        dt.datetime(2026, 12, 4, 15, tzinfo=dt.UTC).timestamp()
    ]
    assert gauge["range"] is None
    day = chart_spec(
        rows, "gauge", "W", "UTC", span=("2026-12-04T00:00:00+00:00", "2026-12-05T00:00:00+00:00")
    )
    assert day["range"] == [
        dt.datetime(2026, 12, 4, tzinfo=dt.UTC).timestamp(),
        dt.datetime(2026, 12, 5, tzinfo=dt.UTC).timestamp(),
    ]
    counter = chart_spec(rows, "counter", "kWh", "UTC")
    assert counter["bars"] and counter["series"] == [{"label": "consumption (kWh)", "values": [4.0]}]


@pytest.mark.parametrize(
    "target", ["https://evil.example/ui", "//evil.example/ui", "/api/v1/catalog", "", None]
)
def test_after_sign_in_only_a_backoffice_path_is_followed(target: str | None) -> None:
    assert safe_next(target) == "/ui/"


def test_pkce_challenge_is_the_rfc_7636_s256_of_the_verifier() -> None:
    # RFC 7636, appendix B
    assert (
        challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
