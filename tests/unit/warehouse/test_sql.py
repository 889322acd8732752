"""The generated warehouse SQL: PostgreSQL statements and the Redshift load transaction."""

from __future__ import annotations

import pytest

from wenu_stream.warehouse import sql
from wenu_stream.warehouse.manifests import StagedFile, make_manifest
from wenu_stream.warehouse.rows import COLUMN_NAMES

COLS = ", ".join(COLUMN_NAMES)
ROLE = "arn:aws:iam::123456789012:role/wenu-copy"


def manifest():  # type: ignore[no-untyped-def]
    return make_manifest(
        "manifests/", [StagedFile("staging/a.csv.gz", 10), StagedFile("staging/b.csv.gz", 20)]
    )


def test_postgres_ddl_is_idempotent_and_keys_readings() -> None:
    ddl = sql.pg_schema("wenu")
    assert all("IF NOT EXISTS" in s for s in ddl)
    readings = next(s for s in ddl if ".readings" in s)
    assert (
        "PRIMARY KEY (device, seq, sent_at, ch, idx)" in readings
        and "measured_at TIMESTAMPTZ NOT NULL" in readings
    )
    assert any("wenu.loaded_manifests (manifest TEXT PRIMARY KEY" in s for s in ddl)
    assert any("wenu.loaded_files (file_key TEXT PRIMARY KEY" in s for s in ddl)


def test_postgres_copy_and_merge() -> None:
    assert sql.pg_copy() == f"COPY wenu_stage ({COLS}) FROM STDIN (FORMAT csv)"
    assert sql.pg_stage().startswith("CREATE TEMP TABLE wenu_stage (device TEXT, seq BIGINT")
    assert sql.pg_stage().endswith("ON COMMIT DROP")
    assert sql.pg_merge("wenu") == (
        f"INSERT INTO wenu.readings ({COLS}, measured_at) SELECT {COLS}, to_timestamp(t_ms / 1000.0) "
        "FROM wenu_stage ON CONFLICT (device, seq, sent_at, ch, idx) DO NOTHING"
    )
    assert "ON CONFLICT (manifest) DO NOTHING RETURNING manifest" in sql.pg_claim("wenu")


def test_redshift_load_is_copy_merge_ledger_in_order() -> None:
    m = manifest()
    statements = sql.redshift_load("wenu", m, bucket="wenu-data", iam_role=ROLE)
    assert statements[0].startswith("CREATE TEMP TABLE wenu_stage (device VARCHAR(64), seq BIGINT")
    assert statements[1] == (
        f"COPY wenu_stage ({COLS}) FROM 's3://wenu-data/manifests/{m.name}.manifest.json' "
        f"IAM_ROLE '{ROLE}' MANIFEST GZIP CSV COMPUPDATE OFF STATUPDATE OFF"
    )
    assert statements[3] == (
        f"COPY wenu_stage_files (file_key, manifest) FROM 's3://wenu-data/manifests/{m.name}.files.csv' "
        f"IAM_ROLE '{ROLE}' CSV COMPUPDATE OFF STATUPDATE OFF"
    )
    merge = statements[4]
    assert merge.startswith(f"INSERT INTO wenu.readings ({COLS}, measured_at) SELECT d.device, d.seq")
    assert "ROW_NUMBER() OVER (PARTITION BY device, seq, sent_at, ch, idx" in merge
    assert "WHERE d.wenu_rank = 1" in merge
    assert (
        "NOT EXISTS (SELECT 1 FROM wenu.readings r WHERE r.device = d.device AND r.seq = d.seq "
        "AND r.sent_at = d.sent_at AND r.ch = d.ch AND r.idx = d.idx)"
    ) in merge
    assert statements[5] == (
        f"INSERT INTO wenu.loaded_manifests (manifest, files, bytes) SELECT '{m.name}', 2, 30 "
        f"WHERE NOT EXISTS (SELECT 1 FROM wenu.loaded_manifests WHERE manifest = '{m.name}')"
    )
    assert statements[6].startswith("INSERT INTO wenu.loaded_files (file_key, manifest) SELECT DISTINCT")
    assert statements[7:] == ["DROP TABLE wenu_stage", "DROP TABLE wenu_stage_files"]


def test_redshift_region_when_the_bucket_is_elsewhere() -> None:
    statements = sql.redshift_load("wenu", manifest(), bucket="wenu-data", iam_role=ROLE, region="eu-west-1")
    assert "MANIFEST GZIP CSV REGION 'eu-west-1' COMPUPDATE OFF" in statements[1]


def test_redshift_ddl_declares_the_key() -> None:
    ddl = sql.redshift_schema("wenu")
    readings = next(s for s in ddl if ".readings" in s)
    assert "PRIMARY KEY (device, seq, sent_at, ch, idx)) DISTKEY (device) SORTKEY (t_ms)" in readings
    assert all("IF NOT EXISTS" in s for s in ddl)


@pytest.mark.parametrize("value", ["it's", "a\\b", "x;DROP TABLE y", "new\nline"])
def test_values_that_could_break_out_of_a_literal_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="refusing"):
        sql.redshift_load("wenu", manifest(), bucket="wenu-data", iam_role=value)


def test_schema_must_be_a_plain_identifier() -> None:
    with pytest.raises(ValueError, match="identifier"):
        sql.pg_schema("wenu; drop")
