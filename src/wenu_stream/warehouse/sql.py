"""The warehouse SQL as text, for PostgreSQL (psycopg, with ``%s`` parameters) and Redshift (Data API).

Pure. Tables, in ``<schema>``:

- ``readings``: one row per reading, unique on ``(device, seq, sent_at, ch, idx)``
  (enforced by PostgreSQL; informational only on Redshift, so its merge skips
  keys that already exist and keeps one row per key from the staging table).
  A PostgreSQL table of an earlier release (no ``sent_at``) is migrated by
  ``pg_schema``; on Redshift run ``ALTER TABLE <schema>.readings ADD COLUMN
  sent_at BIGINT NOT NULL DEFAULT 0`` once.
- ``loaded_manifests``: the ledger, one row per manifest loaded.
- ``loaded_files``: the staged files those manifests held (the loader's
  "pending" is every staged file not in here).

A load writes the three tables in one transaction, so either the readings and
the ledger rows are all there, or none are.

The Redshift Data API batch call takes no bind parameters, so the few values
spliced into its SQL (URLs, the role ARN, a manifest name) are checked
against a conservative character set instead of escaped.
"""

from __future__ import annotations

import re

from wenu_stream.warehouse.manifests import Manifest
from wenu_stream.warehouse.rows import COLUMN_NAMES, COLUMNS, KEY

STAGE = "wenu_stage"
STAGE_FILES = "wenu_stage_files"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SAFE = re.compile(r"^[A-Za-z0-9_./:=+,@*!()$-]*$")
_COLS = ", ".join(COLUMN_NAMES)
_KEY = ", ".join(KEY)


def _schema(schema: str) -> str:
    if not _IDENT.match(schema):
        raise ValueError(f"schema {schema!r} is not a plain lower-case SQL identifier")
    return schema


def literal(value: str) -> str:
    """A quoted SQL string literal of ``value``, refused if it holds anything but URL/ARN characters."""
    if not _SAFE.match(value):
        raise ValueError(
            f"refusing to splice {value!r} into SQL: only letters, digits and URL/ARN punctuation"
        )
    return f"'{value}'"


# ---------------------------------------------------------------- PostgreSQL


def pg_schema(schema: str) -> list[str]:
    """Idempotent DDL of the warehouse tables."""
    s = _schema(schema)
    cols = ", ".join(f"{name} {pg} NOT NULL" for name, pg, _ in COLUMNS)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE TABLE IF NOT EXISTS {s}.readings ({cols}, measured_at TIMESTAMPTZ NOT NULL, PRIMARY KEY ({_KEY}))",
        *_pg_add_sent_at(s),
        (
            f"CREATE TABLE IF NOT EXISTS {s}.loaded_manifests (manifest TEXT PRIMARY KEY, files INTEGER NOT NULL, "
            "bytes BIGINT NOT NULL, rows_staged BIGINT, rows_inserted BIGINT, "
            "loaded_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        ),
        f"CREATE TABLE IF NOT EXISTS {s}.loaded_files (file_key TEXT PRIMARY KEY, manifest TEXT NOT NULL)",
    ]


def _pg_add_sent_at(s: str) -> list[str]:
    """Migrate a ``readings`` table created before ``sent_at`` joined the key (no-ops on a current one)."""
    return [
        f"ALTER TABLE {s}.readings ADD COLUMN IF NOT EXISTS sent_at BIGINT NOT NULL DEFAULT 0",
        (
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            f"AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '{s}.readings'::regclass AND i.indisprimary "
            f"AND a.attname = 'sent_at') THEN ALTER TABLE {s}.readings DROP CONSTRAINT readings_pkey, "
            f"ADD PRIMARY KEY ({_KEY}); END IF; END $$"
        ),
    ]


# Serialises concurrent DDL (CREATE ... IF NOT EXISTS races on the catalog otherwise).
PG_DDL_LOCK = "SELECT pg_advisory_xact_lock(hashtext('wenu_stream.warehouse.ddl'))"


def pg_claim(schema: str) -> str:
    """Ledger row first: a concurrent load of the same manifest waits here, then finds it and skips.

    Parameters: manifest, files, bytes. Returns a row only if this transaction claimed it.
    """
    return (
        f"INSERT INTO {_schema(schema)}.loaded_manifests (manifest, files, bytes) VALUES (%s, %s, %s) "
        "ON CONFLICT (manifest) DO NOTHING RETURNING manifest"
    )


def pg_stage() -> str:
    """A temporary staging table with the file's columns, dropped at commit."""
    cols = ", ".join(f"{name} {pg}" for name, pg, _ in COLUMNS)
    return f"CREATE TEMP TABLE {STAGE} ({cols}) ON COMMIT DROP"


def pg_copy() -> str:
    """COPY of the staged CSV into the staging table (``cursor.copy``)."""
    return f"COPY {STAGE} ({_COLS}) FROM STDIN (FORMAT csv)"


def pg_merge(schema: str) -> str:
    """Insert the staged rows whose key is new; duplicates (replays, overlapping files) are skipped."""
    return (
        f"INSERT INTO {_schema(schema)}.readings ({_COLS}, measured_at) "
        f"SELECT {_COLS}, to_timestamp(t_ms / 1000.0) FROM {STAGE} ON CONFLICT ({_KEY}) DO NOTHING"
    )


def pg_record(schema: str) -> str:
    """Complete the claimed ledger row. Parameters: rows_staged, rows_inserted, manifest."""
    return (
        f"UPDATE {_schema(schema)}.loaded_manifests SET rows_staged = %s, rows_inserted = %s, loaded_at = now() "
        "WHERE manifest = %s"
    )


def pg_record_file(schema: str) -> str:
    """One ``loaded_files`` row. Parameters: file_key, manifest."""
    return (
        f"INSERT INTO {_schema(schema)}.loaded_files (file_key, manifest) VALUES (%s, %s) "
        "ON CONFLICT (file_key) DO NOTHING"
    )


def series_readings(schema: str) -> str:
    """A series' readings in ``[start, end)`` in shard order (rule preview). Parameters: series, start, end, limit."""
    return (
        "SELECT series, company, site, timezone, kind, unit, device, ch, seq, idx, t_ms, value, raw_value"
        f" FROM {_schema(schema)}.readings WHERE series = %s AND t_ms >= %s AND t_ms < %s"
        " ORDER BY t_ms, device, seq, idx LIMIT %s"
    )


def loaded_files(schema: str) -> str:
    """The keys of every loaded file (both targets)."""
    return f"SELECT file_key FROM {_schema(schema)}.loaded_files"


def counts(schema: str) -> str:
    """Loaded manifests, loaded files and readings, as one row (both targets)."""
    s = _schema(schema)
    return (
        f"SELECT (SELECT COUNT(*) FROM {s}.loaded_manifests), (SELECT COUNT(*) FROM {s}.loaded_files), "
        f"(SELECT COUNT(*) FROM {s}.readings)"
    )


# ---------------------------------------------------------------- Redshift


def redshift_schema(schema: str) -> list[str]:
    """Idempotent DDL of the warehouse tables on Redshift (keys are informational there)."""
    s = _schema(schema)
    cols = ", ".join(f"{name} {rs} NOT NULL" for name, _, rs in COLUMNS)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        (
            f"CREATE TABLE IF NOT EXISTS {s}.readings ({cols}, measured_at TIMESTAMP NOT NULL, "
            f"PRIMARY KEY ({_KEY})) DISTKEY (device) SORTKEY (t_ms)"
        ),
        (
            f"CREATE TABLE IF NOT EXISTS {s}.loaded_manifests (manifest VARCHAR(64) NOT NULL, files INTEGER NOT NULL, "
            "bytes BIGINT NOT NULL, loaded_at TIMESTAMP NOT NULL DEFAULT GETDATE(), PRIMARY KEY (manifest))"
        ),
        (
            f"CREATE TABLE IF NOT EXISTS {s}.loaded_files (file_key VARCHAR(1024) NOT NULL, "
            "manifest VARCHAR(64) NOT NULL, PRIMARY KEY (file_key))"
        ),
    ]


def redshift_copy(
    table: str, columns: str, url: str, iam_role: str, *, manifest: bool, region: str = ""
) -> str:
    """``COPY`` of gzip (``manifest``: listed in a manifest) or plain CSV from S3."""
    source = "MANIFEST GZIP CSV" if manifest else "CSV"
    where = f" REGION {literal(region)}" if region else ""
    return (
        f"COPY {table} ({columns}) FROM {literal(url)} IAM_ROLE {literal(iam_role)} {source}{where} "
        "COMPUPDATE OFF STATUPDATE OFF"
    )


def redshift_merge(schema: str) -> str:
    """One row per key from the staging table, for the keys ``readings`` does not hold yet."""
    s = _schema(schema)
    on = " AND ".join(f"r.{k} = d.{k}" for k in KEY)
    return (
        f"INSERT INTO {s}.readings ({_COLS}, measured_at) "
        f"SELECT {', '.join(f'd.{c}' for c in COLUMN_NAMES)}, TIMESTAMP 'epoch' + d.t_ms * INTERVAL '1 millisecond' "
        f"FROM (SELECT {_COLS}, ROW_NUMBER() OVER (PARTITION BY {_KEY} ORDER BY sequence_number, sub_sequence) "
        f"AS wenu_rank FROM {STAGE}) d "
        f"WHERE d.wenu_rank = 1 AND NOT EXISTS (SELECT 1 FROM {s}.readings r WHERE {on})"
    )


def redshift_load(
    schema: str, manifest: Manifest, *, bucket: str, iam_role: str, region: str = ""
) -> list[str]:
    """The statements of one manifest's load, for one ``BatchExecuteStatement`` (a single transaction).

    1. stage the manifest's files (COPY ... MANIFEST GZIP CSV) and its file list,
    2. insert the new keys into ``readings``,
    3. record the manifest and its files in the ledger (unless a previous load did),
    4. drop the staging tables.
    """
    s = _schema(schema)
    name = literal(manifest.name)
    stage_cols = ", ".join(f"{n} {rs}" for n, _, rs in COLUMNS)
    return [
        f"CREATE TEMP TABLE {STAGE} ({stage_cols})",
        redshift_copy(STAGE, _COLS, f"s3://{bucket}/{manifest.key}", iam_role, manifest=True, region=region),
        f"CREATE TEMP TABLE {STAGE_FILES} (file_key VARCHAR(1024), manifest VARCHAR(64))",
        redshift_copy(
            STAGE_FILES,
            "file_key, manifest",
            f"s3://{bucket}/{manifest.files_key}",
            iam_role,
            manifest=False,
            region=region,
        ),
        redshift_merge(s),
        (
            f"INSERT INTO {s}.loaded_manifests (manifest, files, bytes) SELECT {name}, {len(manifest.files)}, "
            f"{manifest.size} WHERE NOT EXISTS (SELECT 1 FROM {s}.loaded_manifests WHERE manifest = {name})"
        ),
        (
            f"INSERT INTO {s}.loaded_files (file_key, manifest) SELECT DISTINCT f.file_key, f.manifest "
            f"FROM {STAGE_FILES} f WHERE NOT EXISTS (SELECT 1 FROM {s}.loaded_files l WHERE l.file_key = f.file_key)"
        ),
        f"DROP TABLE {STAGE}",
        f"DROP TABLE {STAGE_FILES}",
    ]
