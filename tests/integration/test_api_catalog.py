"""The catalog through the API over HTTP, on PostgreSQL: draft -> validate -> impact -> apply -> a worker's cache
sees it -> diff -> restore; bulk edits; stale bases, invalid change sets, unknown ids; a database outage."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.api_support import Api, api_config, running_api, seed
from tests.support.fault_proxy import fault_proxy
from wenu_stream.catalog.directory import CatalogDirectory
from wenu_stream.catalog.store import CatalogStore

pytestmark = pytest.mark.integration


@pytest.fixture
def api(aws_stack: object, postgres_database: str, unique_name: str, tmp_path: Path) -> Any:
    with running_api(api_config(unique_name, postgres_database, tmp_path)) as running:
        yield running


def draft(
    api: Api, operations: list[dict[str, Any]], reason: str = "tune", base: int | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"reason": reason, "operations": operations}
    if base is not None:
        body["base_version"] = base
    response = api.client("admin", subject="alice").post("/api/v1/changesets", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_change_set_preview_apply_worker_sees_it_diff_and_restore(api: Api) -> None:
    assert seed(api) == 1
    worker = CatalogStore(api.config.catalog.url)  # a worker's cache, as the consumers build it
    directory = CatalogDirectory(worker.snapshot, lambda: 0, 30, version=worker.version)
    assert [r.value for r in directory.rules_for("acme-hq.main.power") if r.id == "hq-power-high"] == [
        50000.0
    ]

    admin = api.client("admin", subject="alice")
    made = draft(
        api,
        [
            {"op": "update", "kind": "rule", "id": "hq-power-high", "set": {"value": 60000}},
            {
                "op": "update",
                "kind": "channel",
                "id": "EM-000001/active_power_w",
                "set": {"scale": 0.001, "unit": "kW"},
            },
        ],
        reason="power in kW",
    )
    did = made["draft"]["id"]
    assert made["validation"] | {"problems": [], "warnings": []} == {
        "valid": True,
        "base_version": 1,
        "current_version": 1,
        "stale": False,
        "problems": [],
        "warnings": [],
    }
    impact = admin.get(f"/api/v1/changesets/{did}/impact").json()["impact"]
    assert impact["stats"][0]["series"] == "acme-hq.main.power" and "--rebuild" in impact["stats"][0]["hint"]
    assert {(c["kind"], c["id"]) for c in impact["changes"]} == {
        ("rule", "hq-power-high"),
        ("channel", "EM-000001/active_power_w"),
    }

    applied = admin.post(f"/api/v1/changesets/{did}/apply", headers={"If-Match": '"1"'})
    assert applied.status_code == 200, applied.text
    assert applied.json()["version"] == 2 and applied.json()["draft"]["status"] == "applied"
    snapshot = directory.refresh()
    assert snapshot.version == 2 and snapshot.series["acme-hq.main.power"].unit == "kW"

    versions = admin.get("/api/v1/catalog/versions").json()["items"]
    assert [(v["version"], v["author"], v["reason"]) for v in versions[:2]] == [
        (2, "alice", "power in kW"),
        (1, "seeder", "seed"),
    ]
    changes = admin.get("/api/v1/catalog/diff", params={"from": 1, "to": 2}).json()["changes"]
    assert {c["id"]: c["fields"] for c in changes}["hq-power-high"] == {"value": [50000.0, 60000.0]}

    restore = admin.post("/api/v1/catalog/versions/1/restore", json={"reason": "back to W"})
    assert restore.status_code == 201 and restore.json()["validation"]["valid"]
    back = admin.post(f"/api/v1/changesets/{restore.json()['draft']['id']}/apply")
    assert back.status_code == 200 and back.json()["version"] == 3
    assert admin.get("/api/v1/catalog/diff", params={"from": 1, "to": 3}).json()["changes"] == []
    assert directory.refresh().series["acme-hq.main.power"].unit == "W"
    audit = admin.get("/api/v1/audit").json()["items"]
    assert [a["target"] for a in audit[:2]] == ["catalog:v3", "catalog:v2"]
    worker.close()


def test_a_stale_base_is_409_and_an_invalid_change_set_is_422_with_every_problem(api: Api) -> None:
    seed(api)
    admin = api.client("admin")
    first = draft(api, [{"op": "update", "kind": "rule", "id": "hq-power-high", "set": {"value": 60000}}])
    second = draft(api, [{"op": "update", "kind": "rule", "id": "hq-power-high", "set": {"value": 70000}}])
    assert admin.post(f"/api/v1/changesets/{first['draft']['id']}/apply").status_code == 200
    stale = admin.post(f"/api/v1/changesets/{second['draft']['id']}/apply")
    assert stale.status_code == 409 and stale.json()["extra"] == {"base_version": 1, "current_version": 2}
    assert admin.get(f"/api/v1/changesets/{second['draft']['id']}").json()["validation"]["stale"] is True

    bad = draft(
        api,
        [
            {"op": "update", "kind": "site", "id": "acme-hq", "set": {"timezone": "Mars/Base"}},
            {"op": "retire", "kind": "device", "id": "EM-404"},
            {
                "op": "create",
                "kind": "rule",
                "value": {
                    "id": "r",
                    "type": "threshold",
                    "severity": "loud",
                    "series": "acme-hq.main.power",
                    "op": ">",
                    "value": 1,
                },
            },
            {"op": "frobnicate"},
        ],
    )
    assert bad["validation"]["valid"] is False
    refused = admin.post(f"/api/v1/changesets/{bad['draft']['id']}/apply")
    assert refused.status_code == 422
    paths = sorted(p["path"] for p in refused.json()["extra"]["problems"])
    assert paths == ["$.operations[3].op"]  # the operation that cannot be read is refused first, on its own
    fixable = draft(api, bad["draft"]["operations"][:3], base=2)
    paths = sorted(p["path"] for p in fixable["validation"]["problems"])
    assert paths == ["$.operations[0].set.timezone", "$.operations[1].id", "$.operations[2].value.severity"]
    assert admin.post(f"/api/v1/changesets/{fixable['draft']['id']}/apply").status_code == 422
    assert admin.get("/api/v1/catalog").json()["version"] == 2  # nothing written

    assert admin.get("/api/v1/changesets/nope").status_code == 404
    assert admin.get("/api/v1/catalog/versions/99").status_code == 404
    assert admin.post("/api/v1/catalog/versions/99/restore", json={}).status_code == 404
    assert admin.get("/api/v1/catalog/diff", params={"from": 1, "to": 99}).status_code == 404


def test_bulk_edits_by_filter_and_by_csv_are_one_version(api: Api) -> None:
    seed(api)
    admin = api.client("admin")
    made = draft(
        api,
        [
            {
                "op": "devices_csv",
                "site": "acme-hq",
                "csv": "device,ch,series,kind,unit\n"
                "EM-V1,voltage_v,acme-hq.v1,gauge,V\n"
                "EM-V2,voltage_v,acme-hq.v2,gauge,V\n",
            },
            {
                "op": "create",
                "kind": "rule",
                "value": {
                    "id": "v1-high",
                    "series": "acme-hq.v1",
                    "type": "threshold",
                    "op": ">",
                    "value": 250,
                    "severity": "minor",
                },
            },
            {
                "op": "create",
                "kind": "rule",
                "value": {
                    "id": "v2-high",
                    "series": "acme-hq.v2",
                    "type": "threshold",
                    "op": ">",
                    "value": 250,
                    "severity": "minor",
                },
            },
            {
                "op": "set_where",
                "kind": "rule",
                "where": {"type": "threshold", "site": "acme-hq", "unit": "V"},
                "set": {"value": 253, "severity": "major"},
            },
        ],
        reason="voltage meters",
    )
    impact = admin.get(f"/api/v1/changesets/{made['draft']['id']}/impact").json()["impact"]
    assert impact["series_added"] == ["acme-hq.v1", "acme-hq.v2"]
    assert [(b["rule"], b["series"]) for b in impact["bindings_gained"]] == [
        ("v1-high", "acme-hq.v1"),
        ("v2-high", "acme-hq.v2"),
    ]
    assert admin.post(f"/api/v1/changesets/{made['draft']['id']}/apply").json()["version"] == 2
    rules = {r["id"]: r for r in admin.get("/api/v1/catalog").json()["document"]["alarm_rules"]}
    assert (rules["v1-high"]["value"], rules["v2-high"]["severity"]) == (253.0, "major")
    assert rules["hq-power-high"]["value"] == 50000.0  # a W rule of the site: not selected


def test_a_database_outage_is_503_and_loses_no_accepted_change(
    aws_stack: object, postgres_database: str, unique_name: str, tmp_path: Path
) -> None:
    host, port = re.search(r"@([\d.]+):(\d+)/", postgres_database).groups()  # type: ignore[union-attr]
    with fault_proxy(host, int(port)) as proxy:
        through = postgres_database.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
        with running_api(api_config(unique_name, through, tmp_path)) as api:
            seed(api)
            admin = api.client("admin")
            made = draft(
                api, [{"op": "update", "kind": "rule", "id": "hq-power-high", "set": {"value": 60000}}]
            )
            proxy.cut()
            assert admin.post(f"/api/v1/changesets/{made['draft']['id']}/apply").status_code == 503
            assert admin.get("/api/v1/catalog/versions").status_code == 503
            assert api.client(None).get("/readyz").status_code == 503
            proxy.restore()
            assert api.client(None).get("/readyz").status_code == 200
            assert admin.get(f"/api/v1/changesets/{made['draft']['id']}").json()["draft"]["status"] == "draft"
            applied = admin.post(f"/api/v1/changesets/{made['draft']['id']}/apply")
            assert applied.status_code == 200 and applied.json()["version"] == 2
    with CatalogStore(postgres_database) as store:
        assert store.version() == 2 and [v.version for v in store.versions()] == [2, 1]
