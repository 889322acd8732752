"""Manifests: deterministic names, grouping by size and count, the Redshift manifest JSON."""

from __future__ import annotations

import json

from wenu_stream.warehouse.manifests import (
    StagedFile,
    files_csv,
    group_files,
    make_manifest,
    manifest_json,
    manifest_name,
    parse_manifest,
    pending,
)


def files(*sizes: int) -> list[StagedFile]:
    return [StagedFile(f"staging/p/s/shard-{i:03d}.csv.gz", size) for i, size in enumerate(sizes)]


def test_manifest_name_depends_on_the_set_of_keys_only() -> None:
    assert manifest_name(["b", "a"]) == manifest_name(["a", "b"])
    assert manifest_name(["a", "b"]) != manifest_name(["a", "b", "c"])
    assert len(manifest_name(["a"])) == 32


def test_same_pending_files_give_the_same_manifests() -> None:
    staged = files(5, 5, 5)
    first = group_files(staged, prefix="manifests/", max_bytes=10, max_files=100)
    again = group_files(list(reversed(staged)), prefix="manifests/", max_bytes=10, max_files=100)
    assert first == again
    assert first[0].key == f"manifests/{first[0].name}.manifest.json"
    assert first[0].files_key == f"manifests/{first[0].name}.files.csv"


def test_grouping_packs_files_in_key_order_up_to_max_bytes() -> None:
    groups = group_files(files(4, 4, 4, 9, 1, 30, 2), prefix="m/", max_bytes=10, max_files=100)
    assert [[f.size for f in g.files] for g in groups] == [[4, 4], [4], [9, 1], [30], [2]]
    assert [g.size for g in groups] == [8, 4, 10, 30, 2]


def test_grouping_caps_the_file_count() -> None:
    groups = group_files(files(*[1] * 7), prefix="m/", max_bytes=1000, max_files=3)
    assert [len(g.files) for g in groups] == [3, 3, 1]


def test_no_files_no_manifest() -> None:
    assert group_files([], prefix="m/", max_bytes=10, max_files=10) == []


def test_redshift_manifest_lists_every_file_as_mandatory() -> None:
    manifest = make_manifest("m/", files(3, 4))
    doc = json.loads(manifest_json("wenu-data", manifest))
    assert doc == {
        "entries": [
            {"url": "s3://wenu-data/staging/p/s/shard-000.csv.gz", "mandatory": True},
            {"url": "s3://wenu-data/staging/p/s/shard-001.csv.gz", "mandatory": True},
        ]
    }
    assert parse_manifest(manifest_json("wenu-data", manifest)) == [
        ("wenu-data", f.key) for f in manifest.files
    ]


def test_file_list_is_csv_of_key_and_manifest() -> None:
    manifest = make_manifest("m/", [StagedFile('odd "key".csv.gz', 1)])
    assert files_csv(manifest) == f'"odd ""key"".csv.gz","{manifest.name}"\n'.encode()


def test_pending_skips_loaded_files() -> None:
    staged = files(1, 2, 3)
    assert pending(staged, {staged[1].key}) == [staged[0], staged[2]]
