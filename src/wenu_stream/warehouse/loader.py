"""The `warehouse load` job: staged files -> manifests -> one transaction per manifest, each loaded once.

1. list the staged files (S3, ``staging_prefix``),
2. read the ledger's loaded files (the warehouse) and keep the others (pending),
3. group the pending files into manifests (deterministic names) and write each
   manifest to S3 (``manifest_prefix``),
4. load each manifest in ONE warehouse transaction: stage its rows, insert the
   keys the readings table lacks, record the manifest and its files.

A crash or an outage at any step leaves the ledger as it was; the next run
finds the same files pending and completes them. Loading a manifest again is
a no-op (PostgreSQL: the ledger row is claimed first; Redshift: the merge
skips existing keys and the ledger inserts are guarded).

Targets: ``PostgresTarget`` (psycopg 3, async; the files are streamed from S3
through ``COPY ... FROM STDIN``) and ``RedshiftTarget`` (Data API: the server
reads the files itself with ``COPY ... MANIFEST``).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

import msgspec

from wenu_stream.config import WarehouseConfig
from wenu_stream.errors import WenuError
from wenu_stream.log import get_logger
from wenu_stream.warehouse import sql
from wenu_stream.warehouse.manifests import (
    Manifest,
    StagedFile,
    files_csv,
    group_files,
    manifest_json,
    pending,
)

if TYPE_CHECKING:
    import psycopg
    from types_aiobotocore_redshift_data.client import RedshiftDataAPIServiceClient
    from types_aiobotocore_redshift_data.type_defs import (
        DescribeStatementResponseTypeDef,
        GetStatementResultRequestTypeDef,
    )
    from types_aiobotocore_s3.client import S3Client

_CHUNK = 1 << 20


class WarehouseError(WenuError):
    """A load could not complete (outage, refused statement, timeout); the ledger is unchanged for it."""


class LoadResult(msgspec.Struct, frozen=True, kw_only=True):
    """What loading one manifest did. Row counts are None where the target does not report them (Redshift)."""

    manifest: str
    files: int
    bytes: int
    skipped: bool = False  # already in the ledger
    rows_staged: int | None = None
    rows_inserted: int | None = None


class LoadSummary(msgspec.Struct, kw_only=True):
    staged_files: int
    pending_files: int
    manifests: list[LoadResult]


class WarehouseTarget(Protocol):
    """A warehouse the loader writes to."""

    async def ensure_schema(self) -> None: ...

    async def loaded_files(self) -> set[str]: ...

    async def load(self, manifest: Manifest) -> LoadResult: ...

    async def counts(self) -> dict[str, int]: ...


# ---------------------------------------------------------------- S3 side


async def list_staged(s3: S3Client, bucket: str, prefix: str) -> list[StagedFile]:
    """Every staged ``.csv.gz`` object under ``prefix``."""
    files: list[StagedFile] = []
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        files.extend(
            StagedFile(o["Key"], int(o["Size"]))
            for o in page.get("Contents", ())
            if o["Key"].endswith(".csv.gz")
        )
    return files


async def publish(s3: S3Client, bucket: str, manifest: Manifest) -> None:
    """Write the manifest JSON and its file list (same name, same content on a rerun)."""
    await s3.put_object(
        Bucket=bucket, Key=manifest.files_key, Body=files_csv(manifest), ContentType="text/csv"
    )
    await s3.put_object(
        Bucket=bucket, Key=manifest.key, Body=manifest_json(bucket, manifest), ContentType="application/json"
    )


async def gunzip_object(s3: S3Client, bucket: str, key: str) -> AsyncIterator[bytes]:
    """The decompressed bytes of a gzip object, chunk by chunk (every gzip member, in order)."""
    response = await s3.get_object(Bucket=bucket, Key=key)
    inflate = zlib.decompressobj(wbits=31)
    async with response["Body"] as body:
        while chunk := await body.read(_CHUNK):
            while chunk:
                out = inflate.decompress(chunk)
                if out:
                    yield out
                chunk = inflate.unused_data if inflate.eof else b""
                if chunk:
                    inflate = zlib.decompressobj(wbits=31)
    if not inflate.eof:
        raise WarehouseError(f"s3://{bucket}/{key}: truncated gzip file")


# ---------------------------------------------------------------- the job


async def load_pending(
    s3: S3Client, target: WarehouseTarget, *, bucket: str, config: WarehouseConfig
) -> LoadSummary:
    """Load every staged file that no loaded manifest holds (module docstring, steps 1-4)."""
    log = get_logger("wenu.warehouse")
    await target.ensure_schema()
    staged = await list_staged(s3, bucket, config.staging_prefix)
    todo = pending(staged, await target.loaded_files())
    manifests = group_files(
        todo,
        prefix=config.manifest_prefix,
        max_bytes=config.max_manifest_bytes,
        max_files=config.max_manifest_files,
    )
    results = []
    for manifest in manifests:
        await publish(s3, bucket, manifest)
        result = await target.load(manifest)
        log.info("manifest_loaded", **msgspec.to_builtins(result))
        results.append(result)
    return LoadSummary(staged_files=len(staged), pending_files=len(todo), manifests=results)


async def status(
    s3: S3Client, target: WarehouseTarget, *, bucket: str, config: WarehouseConfig
) -> dict[str, int]:
    """Staged and pending files, loaded manifests and files, readings."""
    await target.ensure_schema()
    staged = await list_staged(s3, bucket, config.staging_prefix)
    todo = pending(staged, await target.loaded_files())
    return {
        "staged_files": len(staged),
        "pending_files": len(todo),
        "pending_bytes": sum(f.size for f in todo),
        **await target.counts(),
    }


# ---------------------------------------------------------------- PostgreSQL


class PostgresTarget:
    """PostgreSQL through an open ``psycopg.AsyncConnection`` (autocommit: each step opens its own transaction).

    The staged files are read from S3 and streamed into ``COPY ... FROM STDIN``.
    """

    def __init__(self, conn: psycopg.AsyncConnection[Any], s3: S3Client, *, bucket: str, schema: str) -> None:
        self._conn, self._s3, self._bucket, self._schema = conn, s3, bucket, schema

    async def ensure_schema(self) -> None:
        async with self._conn.transaction():
            await self._conn.execute(sql.PG_DDL_LOCK)
            for statement in sql.pg_schema(self._schema):
                await self._conn.execute(statement)

    async def loaded_files(self) -> set[str]:
        async with self._conn.transaction():
            cur = await self._conn.execute(sql.loaded_files(self._schema))
            return {row[0] for row in await cur.fetchall()}

    async def load(self, manifest: Manifest) -> LoadResult:
        """Claim the ledger row, COPY the files into a temp table, merge, complete the ledger: one transaction."""
        s, name = self._schema, manifest.name
        done = LoadResult(manifest=name, files=len(manifest.files), bytes=manifest.size, skipped=True)
        async with self._conn.transaction():
            cur = self._conn.cursor()
            await cur.execute(sql.pg_claim(s), (name, len(manifest.files), manifest.size))
            if await cur.fetchone() is None:
                return done
            await cur.execute(sql.pg_stage())
            staged = await self._copy(cur, manifest)
            await cur.execute(sql.pg_merge(s))
            inserted = cur.rowcount
            await cur.execute(sql.pg_record(s), (staged, inserted, name))
            await cur.executemany(sql.pg_record_file(s), [(f.key, name) for f in manifest.files])
        return msgspec.structs.replace(done, skipped=False, rows_staged=staged, rows_inserted=inserted)

    async def _copy(self, cur: psycopg.AsyncCursor[Any], manifest: Manifest) -> int:
        async with cur.copy(sql.pg_copy()) as copy:
            for f in manifest.files:
                async for chunk in gunzip_object(self._s3, self._bucket, f.key):
                    await copy.write(chunk)
        return int(cur.rowcount)

    async def counts(self) -> dict[str, int]:
        async with self._conn.transaction():
            cur = await self._conn.execute(sql.counts(self._schema))
            row = await cur.fetchone()
        assert row is not None  # aggregates without GROUP BY answer one row
        manifests, files, readings = row
        return {"loaded_manifests": manifests, "loaded_files": files, "readings": readings}


# ---------------------------------------------------------------- Redshift


class _Target(TypedDict, total=False):
    """Where a Data API statement runs, and as whom."""

    Database: str
    WorkgroupName: str
    ClusterIdentifier: str
    SecretArn: str
    DbUser: str


class RedshiftTarget:
    """Redshift through the Data API (an open aiobotocore ``redshift-data`` client).

    Every statement is polled until it finishes, fails, or ``redshift_timeout_s``
    passes. A timed-out statement may still complete on the server; since every
    load is idempotent, the next run is safe either way.
    """

    def __init__(
        self,
        client: RedshiftDataAPIServiceClient,
        *,
        bucket: str,
        config: WarehouseConfig,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client, self._bucket, self._cfg = client, bucket, config
        self._sleep, self._monotonic = sleep, monotonic

    def _target(self) -> _Target:
        cfg = self._cfg
        where: _Target = {"Database": cfg.redshift_database}
        if cfg.redshift_workgroup:
            where["WorkgroupName"] = cfg.redshift_workgroup
        else:
            where["ClusterIdentifier"] = cfg.redshift_cluster
        if cfg.redshift_secret_arn:
            where["SecretArn"] = cfg.redshift_secret_arn
        elif cfg.redshift_db_user:
            where["DbUser"] = cfg.redshift_db_user
        return where

    async def run(self, statements: Sequence[str]) -> str:
        """Run one statement, or several as one transaction (BatchExecuteStatement); wait; return its id."""
        if len(statements) == 1:
            response = await self._client.execute_statement(Sql=statements[0], **self._target())
        else:
            response = await self._client.batch_execute_statement(Sqls=list(statements), **self._target())
        await self.wait(response["Id"])
        return str(response["Id"])

    async def wait(self, statement_id: str) -> DescribeStatementResponseTypeDef:
        """Poll until the statement finishes; raise ``WarehouseError`` if it fails or times out."""
        deadline = self._monotonic() + self._cfg.redshift_timeout_s
        while True:
            described = await self._client.describe_statement(Id=statement_id)
            state = described.get("Status")
            if state == "FINISHED":
                return described
            if state in ("FAILED", "ABORTED"):
                raise WarehouseError(
                    f"Redshift statement {statement_id} {state}: {described.get('Error', '')}"
                )
            if self._monotonic() >= deadline:
                raise WarehouseError(
                    f"Redshift statement {statement_id} still {state} after "
                    f"{self._cfg.redshift_timeout_s:g} s (it may still complete; loads are "
                    "idempotent, so run the load again later)"
                )
            await self._sleep(self._cfg.redshift_poll_s)

    async def rows(self, statement: str) -> list[list[Any]]:
        """Run a query and return its rows (every page), each cell as its plain value."""
        statement_id = await self.run([statement])
        rows: list[list[Any]] = []
        request: GetStatementResultRequestTypeDef = {"Id": statement_id}
        while True:
            page = await self._client.get_statement_result(**request)
            rows.extend([next(iter(cell.values())) for cell in record] for record in page.get("Records", ()))
            if not page.get("NextToken"):
                return rows
            request["NextToken"] = page["NextToken"]

    async def ensure_schema(self) -> None:
        for statement in sql.redshift_schema(self._cfg.schema):  # each is idempotent on its own
            await self.run([statement])

    async def loaded_files(self) -> set[str]:
        return {str(row[0]) for row in await self.rows(sql.loaded_files(self._cfg.schema))}

    async def load(self, manifest: Manifest) -> LoadResult:
        statements = sql.redshift_load(
            self._cfg.schema,
            manifest,
            bucket=self._bucket,
            iam_role=self._cfg.redshift_iam_role,
            region=self._cfg.redshift_region,
        )
        await self.run(statements)
        return LoadResult(manifest=manifest.name, files=len(manifest.files), bytes=manifest.size)

    async def counts(self) -> dict[str, int]:
        (row,) = await self.rows(sql.counts(self._cfg.schema))
        return {"loaded_manifests": int(row[0]), "loaded_files": int(row[1]), "readings": int(row[2])}
