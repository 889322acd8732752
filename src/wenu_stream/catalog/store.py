"""The catalog in a relational store: schema, migrations, import and export (edge).

One code path for SQLite (``sqlite:///PATH``, stdlib ``sqlite3``) and
PostgreSQL (``postgresql://...``, psycopg 3): the SQL is portable and written
with ``?`` placeholders; a small :class:`Dialect` holds the few statements that
differ (placeholders, how a transaction takes its lock).

Every table keeps retired rows (``retired_at`` set) instead of deleting them,
so the history of a series stays explainable; ``changed_version`` says at
which catalog version a row last changed. ``catalog_meta.version`` grows by
one on every import that changes something, so caches ask ``SELECT version``
before reloading.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import msgspec

from wenu_stream.alarms.rules import AlarmRule
from wenu_stream.catalog.directory import CatalogSnapshot, build_snapshot
from wenu_stream.catalog.document import CatalogDocument, Channel, Company, Device, Site
from wenu_stream.errors import ConfigError, WenuError

URL_FIELD = "catalog.url (flag --catalog, env WENU_CATALOG_URL)"
URL_FIX = "use sqlite:///RELATIVE/PATH.db, sqlite:////ABSOLUTE/PATH.db or postgresql://USER@HOST:PORT/DB"

_COMMON = ("retired_at BIGINT", "changed_version BIGINT NOT NULL", "changed_at BIGINT NOT NULL")
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE catalog_meta (id INTEGER PRIMARY KEY, version BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
        "INSERT INTO catalog_meta (id, version, updated_at) VALUES (1, 0, 0)",
        f"CREATE TABLE companies (id TEXT PRIMARY KEY, name TEXT NOT NULL, {', '.join(_COMMON)})",
        (
            "CREATE TABLE sites (id TEXT PRIMARY KEY, company TEXT NOT NULL, name TEXT NOT NULL,"
            f" timezone TEXT NOT NULL, {', '.join(_COMMON)})"
        ),
        f"CREATE TABLE devices (id TEXT PRIMARY KEY, site TEXT NOT NULL, {', '.join(_COMMON)})",
        (
            "CREATE TABLE channels (device TEXT NOT NULL, ch TEXT NOT NULL, series TEXT NOT NULL,"
            " kind TEXT NOT NULL, unit TEXT NOT NULL, value_scale DOUBLE PRECISION NOT NULL,"
            f" value_offset DOUBLE PRECISION NOT NULL, {', '.join(_COMMON)}, PRIMARY KEY (device, ch))"
        ),
        "CREATE INDEX channels_series ON channels (series)",
        f"CREATE TABLE alarm_rules (id TEXT PRIMARY KEY, body TEXT NOT NULL, {', '.join(_COMMON)})",
    ),
    (  # 2: versions with who, when and why; draft change sets; the audit log; machine API keys
        "CREATE TABLE catalog_versions (version BIGINT PRIMARY KEY, document TEXT NOT NULL, author TEXT NOT NULL,"
        " reason TEXT NOT NULL, created_at BIGINT NOT NULL, change_set TEXT NOT NULL, summary TEXT NOT NULL)",
        "CREATE TABLE change_sets (id TEXT PRIMARY KEY, status TEXT NOT NULL, base_version BIGINT NOT NULL,"
        " author TEXT NOT NULL, reason TEXT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL,"
        " updated_at BIGINT NOT NULL, applied_version BIGINT)",
        "CREATE INDEX change_sets_updated ON change_sets (updated_at)",
        "CREATE TABLE audit_log (id TEXT PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,"
        " target TEXT NOT NULL, company TEXT NOT NULL, detail TEXT NOT NULL)",
        "CREATE INDEX audit_log_at ON audit_log (at, id)",
        "CREATE TABLE api_keys (id TEXT PRIMARY KEY, hash TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,"
        " company TEXT NOT NULL, created_at BIGINT NOT NULL, revoked_at BIGINT)",
    ),
)


class Table(msgspec.Struct, frozen=True):
    """A catalog table: its key columns and value columns."""

    name: str
    key: tuple[str, ...]
    values: tuple[str, ...]


TABLES = (
    Table("companies", ("id",), ("name",)),
    Table("sites", ("id",), ("company", "name", "timezone")),
    Table("devices", ("id",), ("site",)),
    Table("channels", ("device", "ch"), ("series", "kind", "unit", "value_scale", "value_offset")),
    Table("alarm_rules", ("id",), ("body",)),
)

Row = tuple[Any, ...]


class ImportSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What an import changed. ``changed == 0`` means the store already held the document."""

    added: int
    updated: int
    retired: int
    changed: int
    version: int
    tables: dict[
        str, dict[str, int]
    ]  # table -> {"added": n, "updated": n, "retired": n}, changed tables only


class CatalogUnavailable(WenuError):
    """The catalog store cannot be reached or opened."""


class StaleVersion(WenuError):
    """A change was written against a version that is no longer the current one."""

    def __init__(self, base: int, current: int) -> None:
        self.base, self.current = base, current
        super().__init__(
            f"the catalog is at version {current}, the change was written against {base}: "
            "review it against the current version and apply again"
        )


class VersionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Who made a catalog version, when and why, and what it changed."""

    version: int
    author: str
    reason: str
    created_at: int  # epoch ms
    summary: dict[str, dict[str, int]]  # table -> {"added": n, "updated": n, "retired": n}


class Dialect(msgspec.Struct, frozen=True):
    """The statements that differ between SQLite and PostgreSQL."""

    name: str
    placeholder: str
    begin_write: tuple[str, ...]  # a write transaction that serialises imports and migrations
    begin_read: tuple[str, ...]  # a read transaction that sees one consistent version
    schema_exists: str  # one row when the catalog_schema table exists, no row otherwise (reads, no DDL)


SQLITE = Dialect(
    "sqlite",
    "?",
    ("BEGIN IMMEDIATE",),
    ("BEGIN",),
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'catalog_schema'",
)
# The advisory lock also serialises the first CREATE TABLEs of two processes migrating at once.
POSTGRESQL = Dialect(
    "postgresql",
    "%s",
    ("BEGIN", "SELECT pg_advisory_xact_lock(7157001)"),
    ("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",),
    "SELECT 1 WHERE to_regclass('catalog_schema') IS NOT NULL",
)

_RULE_DECODER = msgspec.json.Decoder(AlarmRule)
_DOCUMENT_DECODER = msgspec.json.Decoder(CatalogDocument)
_SUMMARY_DECODER = msgspec.json.Decoder(dict[str, dict[str, int]])


def parse_url(url: str) -> tuple[Dialect, str]:
    """Check a catalog URL without connecting: its dialect and target (a file path, or the URL itself).

    Raises:
        ConfigError: the URL is not one of the supported forms.
    """
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise ConfigError(URL_FIELD, "the sqlite URL names no file", URL_FIX)
        return SQLITE, path
    if url.startswith(("postgresql://", "postgres://")):
        return POSTGRESQL, url
    scheme = url.partition("://")[0] if "://" in url else url
    raise ConfigError(URL_FIELD, f"unsupported catalog URL {scheme!r}", URL_FIX)


def connect(url: str, *, create: bool = True) -> tuple[Any, Dialect]:
    """Open an autocommit DB-API connection for a catalog URL.

    Args:
        url: ``sqlite:///PATH`` or ``postgresql://...``.
        create: a SQLite file that does not exist is created (``catalog import``); False refuses it
            (readers: a wrong path must not become an empty catalog).

    Raises:
        ConfigError: the URL is not one of the supported forms, or (``create=False``) no SQLite file there.
        CatalogUnavailable: the database cannot be opened or reached.
    """
    dialect, target = parse_url(url)
    if dialect is SQLITE and not create and target != ":memory:" and not Path(target).is_file():
        raise ConfigError(
            URL_FIELD,
            f"no SQLite catalog at {str(Path(target).resolve())!r}",
            "point it at the catalog file (the demo prints its URL), or create one with "
            "`wenu-stream catalog import FILE`",
        )
    conn = _connect_sqlite(target) if dialect is SQLITE else _connect_postgresql(target)
    return conn, dialect


def _connect_sqlite(path: str) -> sqlite3.Connection:
    try:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")  # readers (consumers) never wait for an import
    except (OSError, sqlite3.Error) as exc:
        raise CatalogUnavailable(f"cannot open the SQLite catalog {path!r}: {exc}") from exc
    return conn


def _connect_postgresql(url: str) -> Any:
    import psycopg  # the edge, and only when PostgreSQL is asked for

    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.ProgrammingError as exc:  # a malformed conninfo
        raise ConfigError(URL_FIELD, f"invalid PostgreSQL URL: {exc}", URL_FIX) from exc
    except psycopg.OperationalError as exc:
        raise CatalogUnavailable(
            "cannot reach the PostgreSQL catalog: " + " ".join(str(exc).split())
        ) from exc


class CatalogStore:
    """The catalog tables of one database; opening it applies pending migrations.

    Args:
        url: ``sqlite:///PATH`` or ``postgresql://...``.
        now: epoch-ms clock for ``retired_at`` and ``changed_at`` (the wall clock by default).
        create: False: a SQLite file that does not exist is a ``ConfigError``, not a new empty catalog.
    """

    def __init__(self, url: str, now: Callable[[], int] | None = None, *, create: bool = True) -> None:
        self._conn, self.dialect = connect(url, create=create)
        self._now = now or (lambda: time.time_ns() // 1_000_000)
        try:
            self.migrate()
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql.replace("?", self.dialect.placeholder), params)

    def _executemany(self, sql: str, rows: Sequence[Row]) -> None:
        if rows:
            self._conn.cursor().executemany(sql.replace("?", self.dialect.placeholder), rows)

    @contextmanager
    def _transaction(self, begin: tuple[str, ...]) -> Iterator[None]:
        for statement in begin:
            self._execute(statement)
        try:
            yield
        except BaseException:
            self._execute("ROLLBACK")
            raise
        self._execute("COMMIT")

    def migrate(self) -> int:
        """Apply pending migrations in one transaction; return the schema version.

        A store whose schema is current is only read, so a role without DDL rights (the services'
        role in production, where a deploy-time task migrates as the owner) can open it.
        """
        if self._schema_version() == len(MIGRATIONS):
            return len(MIGRATIONS)
        with self._transaction(self.dialect.begin_write):
            self._execute("CREATE TABLE IF NOT EXISTS catalog_schema (version INTEGER NOT NULL)")
            current = self._execute("SELECT MAX(version) FROM catalog_schema").fetchone()[0] or 0
            for number, statements in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in statements:
                    self._execute(statement)
                self._execute("INSERT INTO catalog_schema (version) VALUES (?)", (number,))
            self._record_unversioned()
        return len(MIGRATIONS)

    def _schema_version(self) -> int:
        if not self._execute(self.dialect.schema_exists).fetchone():
            return 0
        return int(self._execute("SELECT MAX(version) FROM catalog_schema").fetchone()[0] or 0)

    def _record_unversioned(self) -> None:
        """Keep the current catalog as a version when it predates versions (a store made before migration 2)."""
        current = self.version()
        if (
            current == 0
            or self._execute("SELECT 1 FROM catalog_versions WHERE version = ?", (current,)).fetchone()
        ):
            return
        updated_at = self._execute("SELECT updated_at FROM catalog_meta WHERE id = 1").fetchone()[0]
        self._execute(
            "INSERT INTO catalog_versions (version, document, author, reason, created_at, change_set, summary)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                current,
                msgspec.json.encode(self._read_document()).decode(),
                "(before versions)",
                "the catalog as it was when versions started",
                int(updated_at),
                "{}",
                "{}",
            ),
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (``?`` placeholders) on the store's connection: for the modules next to the store."""
        return self._execute(sql, params)

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[None]:
        """A write transaction (serialised with imports) or a consistent read one."""
        with self._transaction(self.dialect.begin_write if write else self.dialect.begin_read):
            yield

    def now(self) -> int:
        """The store's clock, epoch ms."""
        return self._now()

    def version(self) -> int:
        """The catalog version: it grows by one on every effective change."""
        return int(self._execute("SELECT version FROM catalog_meta WHERE id = 1").fetchone()[0])

    def import_document(
        self, document: CatalogDocument, *, author: str = "system", reason: str = "catalog import"
    ) -> ImportSummary:
        """Make the active catalog equal to ``document``, whatever its version (see :meth:`apply`)."""
        return self.apply(document, base_version=None, author=author, reason=reason)

    def apply(
        self,
        document: CatalogDocument,
        *,
        base_version: int | None,
        author: str,
        reason: str,
        change_set: bytes = b"{}",
        within: Callable[[int], None] | None = None,
    ) -> ImportSummary:
        """Make the active catalog equal to ``document`` in one transaction, as a new version.

        Steps: 1. lock (write transaction); 2. refuse a stale ``base_version``;
        3. per table: insert new rows, update changed rows (a retired row that
        comes back counts as added), retire active rows the document no longer
        holds; 4. if anything changed, bump the version and keep the new
        version's document with its author, reason and change set.

        Args:
            document: a validated document (see ``document.validate``).
            base_version: the version the change was written against; None applies whatever the version.
            author: who asked for it (a user, an API key, ``cli:<user>``).
            reason: why; kept in the version history.
            change_set: the change set's JSON, kept with the version.
            within: called with the new version inside the transaction when something changed
                (e.g. mark the draft applied: both commit or neither does).

        Raises:
            StaleVersion: the catalog moved past ``base_version``; nothing was written.
        """
        desired = _rows(document)
        now = self._now()
        with self._transaction(self.dialect.begin_write):
            current = self.version()
            if base_version is not None and base_version != current:
                raise StaleVersion(base_version, current)
            version = current + 1
            tables = {t.name: self._sync(t, desired[t.name], version, now) for t in TABLES}
            counts = {n: c for n, c in tables.items() if any(c.values())}
            if counts:
                self._execute(
                    "UPDATE catalog_meta SET version = ?, updated_at = ? WHERE id = 1", (version, now)
                )
                self._execute(
                    "INSERT INTO catalog_versions (version, document, author, reason, created_at, change_set,"
                    " summary) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        version,
                        msgspec.json.encode(self._read_document()).decode(),
                        author,
                        reason,
                        now,
                        change_set.decode(),
                        msgspec.json.encode(counts).decode(),
                    ),
                )
                if within is not None:
                    within(version)
            else:
                version -= 1
        return ImportSummary(
            added=sum(c["added"] for c in counts.values()),
            updated=sum(c["updated"] for c in counts.values()),
            retired=sum(c["retired"] for c in counts.values()),
            changed=sum(sum(c.values()) for c in counts.values()),
            version=version,
            tables=counts,
        )

    def versions(self, *, before: int | None = None, limit: int = 50) -> list[VersionInfo]:
        """Version history, newest first: versions below ``before`` (all when None), at most ``limit``."""
        rows = self._execute(
            "SELECT version, author, reason, created_at, summary FROM catalog_versions WHERE version < ?"
            " ORDER BY version DESC LIMIT ?",
            (before if before is not None else 1 << 62, limit),
        ).fetchall()
        return [
            VersionInfo(
                version=int(v), author=a, reason=r, created_at=int(c), summary=_SUMMARY_DECODER.decode(s)
            )
            for v, a, r, c, s in rows
        ]

    def version_info(self, version: int) -> VersionInfo | None:
        """One version's history entry, or None."""
        found = self.versions(before=version + 1, limit=1)
        return found[0] if found and found[0].version == version else None

    def document_at(self, version: int) -> CatalogDocument | None:
        """The catalog as it was at ``version`` (0: empty), or None for a version that never existed."""
        if version == 0:
            return CatalogDocument([], [])
        row = self._execute("SELECT document FROM catalog_versions WHERE version = ?", (version,)).fetchone()
        return None if row is None else _DOCUMENT_DECODER.decode(row[0])

    def _sync(self, table: Table, desired: dict[Row, Row], version: int, now: int) -> dict[str, int]:
        columns = table.key + table.values
        rows = self._execute(f"SELECT {', '.join(columns)}, retired_at FROM {table.name}").fetchall()
        existing = {tuple(r[: len(table.key)]): (tuple(r[len(table.key) : -1]), r[-1]) for r in rows}
        inserts = [k + v + (version, now) for k, v in desired.items() if k not in existing]
        revived = [
            (*v, version, now, *k) for k, v in desired.items() if k in existing and existing[k][1] is not None
        ]
        updated = [
            (*v, version, now, *k)
            for k, v in desired.items()
            if k in existing and existing[k][1] is None and existing[k][0] != v
        ]
        retired = [
            (now, version, now, *k) for k, (_, gone) in existing.items() if gone is None and k not in desired
        ]
        where = " AND ".join(f"{c} = ?" for c in table.key)
        self._executemany(
            f"INSERT INTO {table.name} ({', '.join(columns)}, changed_version, changed_at)"
            f" VALUES ({', '.join('?' * (len(columns) + 2))})",
            inserts,
        )
        sets = ", ".join(f"{c} = ?" for c in table.values)
        self._executemany(
            f"UPDATE {table.name} SET {sets}, retired_at = NULL, changed_version = ?, changed_at = ?"
            f" WHERE {where}",
            revived + updated,
        )
        self._executemany(
            f"UPDATE {table.name} SET retired_at = ?, changed_version = ?, changed_at = ? WHERE {where}",
            retired,
        )
        return {"added": len(inserts) + len(revived), "updated": len(updated), "retired": len(retired)}

    def export_document(self) -> CatalogDocument:
        """The active catalog as a document (ids sorted); importing it back changes nothing."""
        with self._transaction(self.dialect.begin_read):
            return self._read_document()

    def current(self) -> tuple[int, CatalogDocument]:
        """The version and the active catalog, read in one consistent transaction."""
        with self._transaction(self.dialect.begin_read):
            return self.version(), self._read_document()

    def snapshot(self) -> CatalogSnapshot:
        """The active catalog and its version, read in one consistent transaction, indexed for lookups."""
        with self._transaction(self.dialect.begin_read):
            return build_snapshot(self.version(), self._read_document())

    def _active(self, table: Table) -> list[Row]:
        columns = ", ".join(table.key + table.values)
        order = ", ".join(table.key)
        return [
            tuple(r)
            for r in self._execute(
                f"SELECT {columns} FROM {table.name} WHERE retired_at IS NULL ORDER BY {order}"
            ).fetchall()
        ]

    def _read_document(self) -> CatalogDocument:
        companies_t, sites_t, devices_t, channels_t, rules_t = TABLES
        channels: dict[str, list[Channel]] = {}
        for device, ch, series, kind, unit, scale, offset in self._active(channels_t):
            channels.setdefault(device, []).append(
                Channel(ch=ch, series=series, kind=kind, unit=unit, scale=scale, offset=offset)
            )
        devices: dict[str, list[Device]] = {}
        for device_id, site_id in self._active(devices_t):
            devices.setdefault(site_id, []).append(Device(device_id, channels.get(device_id, [])))
        sites: dict[str, list[Site]] = {}
        for site_id, company_id, name, timezone in self._active(sites_t):
            sites.setdefault(company_id, []).append(
                Site(id=site_id, name=name, timezone=timezone, devices=devices.get(site_id, []))
            )
        companies = [Company(cid, name, sites.get(cid, [])) for cid, name in self._active(companies_t)]
        rules = [_RULE_DECODER.decode(body) for _, body in self._active(rules_t)]
        return CatalogDocument(companies, rules)


def _rows(document: CatalogDocument) -> dict[str, dict[Row, Row]]:
    """The rows a document stands for, per table: key -> values."""
    rows: dict[str, dict[Row, Row]] = {t.name: {} for t in TABLES}
    for company in document.companies:
        rows["companies"][(company.id,)] = (company.name,)
        for site in company.sites:
            rows["sites"][(site.id,)] = (company.id, site.name, site.timezone)
            for device in site.devices:
                rows["devices"][(device.id,)] = (site.id,)
                for c in device.channels:
                    rows["channels"][(device.id, c.ch)] = (
                        c.series,
                        c.kind,
                        c.unit,
                        float(c.scale),
                        float(c.offset),
                    )
    for rule in document.alarm_rules:
        rows["alarm_rules"][(rule.id,)] = (msgspec.json.encode(rule).decode(),)
    return rows
