"""Change sets: operations on a base document, validated whole, impact and diff, applied as versions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.support.catalog import spec_document
from wenu_stream.catalog.changes import ChangeSet, decode_operations, plan
from wenu_stream.catalog.document import CatalogDocument, validate
from wenu_stream.catalog.impact import REBUILD_HINT, diff, impact
from wenu_stream.catalog.store import CatalogStore, StaleVersion
from wenu_stream.catalog.workspace import (
    InvalidChange,
    create_api_key,
    create_draft,
    decode_change_set,
    get_draft,
    revoke_api_key,
    submit,
    verify_api_key,
)


def base() -> CatalogDocument:
    checked = validate(spec_document())
    assert checked.document is not None
    return checked.document


def ops(*raw: dict[str, Any]) -> list[Any]:
    parsed, problems = decode_operations(list(raw))
    assert problems == []
    return parsed


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CatalogStore]:
    with CatalogStore(f"sqlite:///{tmp_path}/c.db") as s:
        submit(
            s,
            ChangeSet(
                base_version=0, reason="seed", operations=ops({"op": "replace", "document": spec_document()})
            ),
            author="alice",
        )
        yield s


def test_an_update_of_a_rule_field_changes_only_that_field() -> None:
    planned = plan(
        base(), ops({"op": "update", "kind": "rule", "id": "hq-power-high", "set": {"value": 60000}})
    )
    assert planned.valid
    assert [(c.kind, c.id, c.fields) for c in diff(base(), planned.document)] == [  # type: ignore[arg-type]
        ("rule", "hq-power-high", {"value": [50000.0, 60000.0]})
    ]


def test_every_problem_is_reported_at_the_operation_that_caused_it() -> None:
    planned = plan(
        base(),
        ops(
            {
                "op": "create",
                "kind": "site",
                "value": {"id": "acme-b", "company": "acme", "timezone": "Mars/Base"},
            },
            {"op": "update", "kind": "rule", "id": "nope", "set": {"value": 1}},
            {"op": "create", "kind": "company", "value": {"id": "acme"}},
            {
                "op": "devices_csv",
                "site": "acme-hq",
                "csv": "device,ch,series,kind,unit,scale\nEM-2,v,acme-hq.v,gauge,V,1\nEM-3,w,acme-hq.w,gaug,W,x\n",
            },
            {"op": "create", "kind": "device", "value": {"id": "EM-9", "site": "nowhere"}},
            {"op": "update", "kind": "rule", "id": "hq-power-high", "set": {"clear": 70000}},
        ),
    )
    assert not planned.valid
    assert [str(p) for p in planned.problems] == [
        "$.operations[1].id: no rule 'nope' in the catalog",
        "$.operations[2].value: company 'acme' exists; use update (or upsert)",
        "$.operations[3].csv[line 3].scale: 'x' is not a number",
        "$.operations[4].value.site: no site 'nowhere' in the catalog",
        "$.operations[0].value.timezone: unknown time zone 'Mars/Base': use an IANA name such as 'America/Santiago'",
        "$.operations[3].csv[line 3].kind: invalid kind 'gaug': use 'gauge' or 'counter'",
        "$.operations[5].set.clear: must be at or below value (50000.0) for op '>' (hysteresis)",
    ]
    assert planned.problems[-1].entity == "rule hq-power-high"


def test_a_malformed_change_set_lists_every_bad_field_and_operation() -> None:
    change, problems = decode_change_set(
        {"reason": " ", "operations": [{"op": "bogus"}, {"op": "retire"}], "x": 1}
    )
    assert change is None
    assert sorted(p.path for p in problems) == [
        "$.base_version",
        "$.operations[0].op",
        "$.operations[1]",
        "$.reason",
        "$.x",
    ]


def test_bulk_set_where_edits_every_selected_rule_and_refuses_an_empty_selection() -> None:
    raw = spec_document()
    raw["alarm_rules"].append(
        {
            "id": "hq-power-low",
            "series": "acme-hq.main.power",
            "type": "threshold",
            "op": "<",
            "value": 10,
            "severity": "minor",
        }
    )
    doc = validate(raw).document
    assert doc is not None
    planned = plan(
        doc,
        ops(
            {
                "op": "set_where",
                "kind": "rule",
                "where": {"type": "threshold", "site": "acme-hq", "unit": "W"},
                "set": {"severity": "major"},
            }
        ),
    )
    assert planned.document is not None
    assert sorted(c.id for c in diff(doc, planned.document)) == ["hq-power-high", "hq-power-low"]
    empty = plan(
        doc, ops({"op": "set_where", "kind": "rule", "where": {"site": "elsewhere"}, "set": {"for_s": 1}})
    )
    assert [str(p) for p in empty.problems] == ["$.operations[0].where: selects no rule; check its values"]


def test_a_csv_of_devices_upserts_devices_and_channels() -> None:
    planned = plan(
        base(),
        ops(
            {
                "op": "devices_csv",
                "site": "acme-hq",
                "csv": (
                    "device,ch,series,kind,unit,scale,offset\n"
                    "EM-2,voltage_v,acme-hq.b.volts,gauge,V,0.1,0\n"
                    "EM-2,energy_kwh,acme-hq.b.energy,counter,kWh,,\n"
                    "EM-000001,active_power_w,acme-hq.main.power,gauge,kW,0.001,0\n"
                ),
            }
        ),
    )
    assert planned.document is not None
    changed = {(c.kind, c.id, c.action) for c in diff(base(), planned.document)}
    assert changed == {
        ("device", "EM-2", "added"),
        ("channel", "EM-2/voltage_v", "added"),
        ("channel", "EM-2/energy_kwh", "added"),
        ("channel", "EM-000001/active_power_w", "changed"),
    }


def test_retiring_a_site_retires_its_devices_and_channels_and_orphaned_rules_are_problems() -> None:
    planned = plan(base(), ops({"op": "retire", "kind": "site", "id": "acme-hq"}))
    assert not planned.valid
    assert {p.path.split(".")[-1] for p in planned.problems} == {
        "series"
    }  # every rule watched a retired series
    rules_too = plan(
        base(),
        ops(
            {"op": "retire", "kind": "site", "id": "acme-hq"},
            *({"op": "retire", "kind": "rule", "id": r["id"]} for r in spec_document()["alarm_rules"]),
        ),
    )
    assert rules_too.document is not None and rules_too.document.companies[0].sites == []


def test_impact_names_series_bindings_firing_alarms_and_stats_to_rebuild() -> None:
    planned = plan(
        base(),
        ops(
            {
                "op": "update",
                "kind": "channel",
                "id": "EM-000001/active_power_w",
                "set": {"scale": 0.001, "unit": "kW"},
            },
            {"op": "update", "kind": "rule", "id": "hq-power-high", "set": {"value": 60000}},
            {
                "op": "update",
                "kind": "rule",
                "id": "hq-power-stuck",
                "set": {"type": "threshold", "op": ">", "value": 1, "count": None},
            },
            {"op": "retire", "kind": "rule", "id": "hq-power-jump"},
            {
                "op": "create",
                "kind": "channel",
                "value": {
                    "device": "EM-000001",
                    "ch": "v",
                    "series": "acme-hq.v",
                    "kind": "gauge",
                    "unit": "V",
                },
            },
            {
                "op": "create",
                "kind": "rule",
                "value": {
                    "id": "volts",
                    "type": "stuck",
                    "count": 5,
                    "severity": "minor",
                    "match": {"unit": "V"},
                },
            },
        ),
    )
    assert planned.document is not None
    firing = [
        ("hq-power-high", "acme-hq.main.power", "firing"),
        ("hq-power-stuck", "acme-hq.main.power", "firing"),
        ("hq-power-jump", "acme-hq.main.power", "pending"),
    ]
    got = impact(base(), planned.document, firing)
    assert got.series_added == ["acme-hq.v"] and got.series_removed == []
    assert [(b.rule, b.series) for b in got.bindings_gained] == [("volts", "acme-hq.v")]
    assert [(b.rule, b.series) for b in got.bindings_lost] == [("hq-power-jump", "acme-hq.main.power")]
    assert [(a.rule, a.outcome) for a in got.alarms] == [
        ("hq-power-high", "kept"),
        ("hq-power-jump", "dropped"),
        ("hq-power-stuck", "reset"),
    ]
    assert [(s.series, s.fields, s.hint) for s in got.stats] == [
        ("acme-hq.main.power", {"scale": [1.0, 0.001], "unit": ["W", "kW"]}, REBUILD_HINT)
    ]


def test_apply_is_optimistic_a_stale_base_is_refused_and_nothing_is_written(store: CatalogStore) -> None:
    edit = ops({"op": "update", "kind": "rule", "id": "hq-power-high", "set": {"value": 60000}})
    first = submit(store, ChangeSet(base_version=1, reason="raise", operations=edit), author="bob")
    assert (first.version, first.updated) == (2, 1)
    with pytest.raises(StaleVersion) as stale:
        submit(store, ChangeSet(base_version=1, reason="again", operations=edit), author="carol")
    assert (stale.value.base, stale.value.current) == (1, 2)
    assert store.version() == 2


def test_an_invalid_change_set_is_refused_whole(store: CatalogStore) -> None:
    bad = ops(
        {"op": "update", "kind": "rule", "id": "hq-power-high", "set": {"value": 60000}},
        {"op": "update", "kind": "site", "id": "acme-hq", "set": {"timezone": "Nowhere"}},
    )
    with pytest.raises(InvalidChange) as refused:
        submit(store, ChangeSet(base_version=1, reason="x", operations=bad), author="bob")
    assert [p.path for p in refused.value.problems] == ["$.operations[1].set.timezone"]
    assert store.version() == 1


def test_versions_keep_author_reason_and_document_and_a_restore_is_a_new_version(store: CatalogStore) -> None:
    submit(
        store,
        ChangeSet(
            base_version=1,
            reason="raise",
            operations=ops({"op": "update", "kind": "rule", "id": "hq-power-high", "set": {"value": 60000}}),
        ),
        author="bob",
    )
    assert [(v.version, v.author, v.reason) for v in store.versions()] == [
        (2, "bob", "raise"),
        (1, "alice", "seed"),
    ]
    old = store.document_at(1)
    assert old is not None and diff(old, store.current()[1])[0].fields == {"value": [50000.0, 60000.0]}
    restore = ChangeSet(
        base_version=2,
        reason="restore version 1",
        operations=ops({"op": "replace", "document": msgspec.to_builtins(old)}),
    )
    assert submit(store, restore, author="bob").version == 3
    assert store.current()[1] == old and diff(old, store.document_at(3)) == []  # type: ignore[arg-type]
    assert store.document_at(99) is None


def test_a_draft_is_marked_applied_in_the_same_transaction(store: CatalogStore) -> None:
    raw = [{"op": "update", "kind": "rule", "id": "hq-power-high", "set": {"value": 55000}}]
    draft = create_draft(store, author="bob", reason="tune", base_version=1, operations=raw)
    submit(
        store, ChangeSet(base_version=1, reason="tune", operations=ops(*raw)), author="bob", draft_id=draft.id
    )
    applied = get_draft(store, draft.id)
    assert applied is not None and (applied.status, applied.applied_version) == ("applied", 2)


def test_api_keys_are_stored_hashed_and_can_be_revoked(store: CatalogStore) -> None:
    text, info = create_api_key(store, name="scada", role="viewer", company="acme")
    assert verify_api_key(store, text) == info
    assert text.split("_", 2)[2] not in str(store.execute("SELECT * FROM api_keys").fetchall())
    assert verify_api_key(store, text[:-1] + ("A" if text[-1] != "A" else "B")) is None
    revoke_api_key(store, info.id)
    assert verify_api_key(store, text) is None


def test_a_store_made_before_versions_keeps_its_catalog_as_a_version(tmp_path: Path) -> None:
    from wenu_stream.catalog import store as store_module

    url = f"sqlite:///{tmp_path}/old.db"
    saved = store_module.MIGRATIONS
    store_module.MIGRATIONS = saved[:1]
    try:
        with CatalogStore(url) as old:
            old._execute("BEGIN")  # what an import did before versions: tables only
            for t in store_module.TABLES:
                rows = store_module._rows(base())[t.name]
                for k, v in rows.items():
                    cols = t.key + t.values
                    old._execute(
                        f"INSERT INTO {t.name} ({', '.join(cols)}, changed_version, changed_at)"
                        f" VALUES ({', '.join('?' * (len(cols) + 2))})",
                        (*k, *v, 1, 5),
                    )
            old._execute("UPDATE catalog_meta SET version = 1, updated_at = 5 WHERE id = 1")
            old._execute("COMMIT")
    finally:
        store_module.MIGRATIONS = saved
    with CatalogStore(url) as new:
        info = new.version_info(1)
        assert info is not None and info.author == "(before versions)"
        assert (
            new.document_at(1) == new.export_document()
            and new.export_document().companies == base().companies
        )
