"""The catalog on a real PostgreSQL server: CLI, concurrent imports and migrations, the cache seeing changes.

The store's behaviour tests (import, retire, export) run against PostgreSQL
too: tests/integration/test_catalog_store_postgres.py.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.catalog import spec_document
from wenu_stream.catalog.directory import CatalogDirectory
from wenu_stream.catalog.document import CatalogDocument, validate
from wenu_stream.catalog.store import CatalogStore
from wenu_stream.cli.main import main

pytestmark = pytest.mark.integration


def doc(raw: dict[str, Any]) -> CatalogDocument:
    result = validate(raw)
    assert result.document is not None
    return result.document


def with_device(n: int) -> dict[str, Any]:
    raw = spec_document()
    raw["companies"][0]["sites"][0]["devices"].append(
        {"id": f"TM-{n}", "channels": [{"ch": "temperature_c", "series": f"acme-hq.t{n}", "kind": "gauge"}]}
    )
    return raw


def run_in_threads(*targets: Any) -> list[Any]:
    """Start every target at once (behind a barrier); return results or exceptions."""
    barrier = threading.Barrier(len(targets))
    results: list[Any] = [None] * len(targets)

    def go(i: int) -> None:
        barrier.wait()
        try:
            results[i] = targets[i]()
        except Exception as exc:  # noqa: BLE001 - reported through the results
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_cli_import_and_export_on_postgresql(
    postgres_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "catalog.json"
    file.write_text(json.dumps(spec_document()), encoding="utf-8")
    assert main(["catalog", "import", str(file), "--catalog", postgres_database]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1
    assert main(["catalog", "export", "--catalog", postgres_database]) == 0
    (tmp_path / "out.json").write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["catalog", "import", str(tmp_path / "out.json"), "--catalog", postgres_database]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] == 0


def test_two_stores_migrating_a_fresh_database_at_once(postgres_database: str) -> None:
    stores = run_in_threads(*[lambda: CatalogStore(postgres_database) for _ in range(3)])
    assert all(isinstance(s, CatalogStore) for s in stores), stores
    for store in stores:
        assert store.version() == 0
        store.close()


def test_concurrent_imports_are_serialised_with_one_version_each(postgres_database: str) -> None:
    with CatalogStore(postgres_database) as seed:
        seed.import_document(doc(spec_document()))
    stores = [CatalogStore(postgres_database) for _ in range(3)]
    try:
        results = run_in_threads(
            *[(lambda s=s, n=n: s.import_document(doc(with_device(n)))) for n, s in enumerate(stores)]
        )
        assert sorted(r.version for r in results) == [2, 3, 4]
        final = max(results, key=lambda r: r.version)
        winner = results.index(final)
        assert stores[0].export_document().companies == doc(with_device(winner)).companies
    finally:
        for s in stores:
            s.close()


def test_the_directory_sees_an_import_on_its_next_refresh(postgres_database: str) -> None:
    clock_ms = [0]
    with CatalogStore(postgres_database) as writer, CatalogStore(postgres_database) as reader:
        writer.import_document(doc(spec_document()))
        directory = CatalogDirectory(
            reader.snapshot, lambda: clock_ms[0], refresh_s=30, version=reader.version
        )
        assert directory.lookup("TM-1", "temperature_c") is None
        writer.import_document(doc(with_device(1)))
        assert directory.lookup("TM-1", "temperature_c") is None  # not before the interval
        clock_ms[0] += 30_000
        info = directory.lookup("TM-1", "temperature_c")
        assert info is not None and info.series == "acme-hq.t1"
        assert directory.snapshot().version == 2


def test_concurrent_change_sets_on_one_base_apply_once_and_the_others_are_stale(
    postgres_database: str,
) -> None:
    from wenu_stream.catalog.changes import ChangeSet, decode_operations
    from wenu_stream.catalog.store import StaleVersion
    from wenu_stream.catalog.workspace import submit

    with CatalogStore(postgres_database) as seed:
        seed.import_document(doc(spec_document()))
    stores = [CatalogStore(postgres_database) for _ in range(3)]

    def change(n: int) -> ChangeSet:
        ops, _ = decode_operations(
            [{"op": "update", "kind": "rule", "id": "hq-power-high", "set": {"value": n}}]
        )
        return ChangeSet(base_version=1, reason=f"edit {n}", operations=ops)

    try:
        results = run_in_threads(
            *[
                (lambda s=s, n=n: submit(s, change(60000 + n), author=f"user{n}"))
                for n, s in enumerate(stores)
            ]
        )
        applied = [r for r in results if not isinstance(r, Exception)]
        assert len(applied) == 1 and applied[0].version == 2
        assert all(isinstance(r, StaleVersion) for r in results if r not in applied)
        assert [v.version for v in stores[0].versions()] == [2, 1]
    finally:
        for s in stores:
            s.close()
