"""The API's access to the catalog store: one connection used by one thread at a time, reopened after an outage.

:class:`CatalogGateway` runs store calls under a lock (a DB-API connection is
not shared between threads) and maps a database that cannot be reached to
:class:`CatalogDown` (503): the connection is dropped and the next call opens
a new one, so the service recovers by itself when the database comes back.
Nothing is acknowledged before its transaction commits, so an outage loses no
accepted change.

:meth:`CatalogGateway.view` is the catalog the tenancy checks and read
endpoints see: a snapshot refreshed like the workers' cache (ask the
version, reload only when it moved), kept when a refresh fails.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

import msgspec

from wenu_stream.catalog.directory import CatalogSnapshot, build_snapshot
from wenu_stream.catalog.document import CatalogDocument
from wenu_stream.catalog.store import CatalogStore, CatalogUnavailable

T = TypeVar("T")


def _down_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (
        CatalogUnavailable,
        sqlite3.OperationalError,
        sqlite3.InterfaceError,
    )
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return errors
    return (*errors, psycopg.OperationalError, psycopg.InterfaceError)


DOWN = _down_errors()


class CatalogDown(Exception):
    """The catalog database cannot be reached now (HTTP 503)."""


class SiteInfo(msgspec.Struct, frozen=True):
    id: str
    company: str
    name: str
    timezone: str


class CatalogView(msgspec.Struct, frozen=True, kw_only=True):
    """The catalog at one version, indexed for the API's lookups."""

    version: int
    document: CatalogDocument
    snapshot: CatalogSnapshot
    sites: dict[str, SiteInfo]
    companies: dict[str, str]  # id -> name


def build_view(version: int, document: CatalogDocument) -> CatalogView:
    sites = {s.id: SiteInfo(s.id, c.id, s.name, s.timezone) for c in document.companies for s in c.sites}
    return CatalogView(
        version=version,
        document=document,
        snapshot=build_snapshot(version, document),
        sites=sites,
        companies={c.id: c.name for c in document.companies},
    )


class CatalogGateway:
    """Serialised, self-healing access to the catalog store (see the module docstring)."""

    def __init__(
        self, open_store: Callable[[], CatalogStore], *, refresh_ms: int, now_ms: Callable[[], int]
    ) -> None:
        self._open = open_store
        self._store: CatalogStore | None = None
        self._lock = threading.RLock()
        self._refresh_ms = refresh_ms
        self._now = now_ms
        self._view: CatalogView | None = None
        self._checked_at = 0

    def run(self, call: Callable[[CatalogStore], T]) -> T:
        """Run ``call`` with the store; :class:`CatalogDown` when the database cannot be reached."""
        with self._lock:
            try:
                if self._store is None:
                    self._store = self._open()
                return call(self._store)
            except DOWN as exc:
                self._drop()
                raise CatalogDown(" ".join(str(exc).split()) or type(exc).__name__) from exc

    def _drop(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except Exception:  # noqa: BLE001, S110 - a broken connection may fail to close; it is gone either way
                pass

    def view(self) -> CatalogView:
        """The current catalog (refreshed when the interval passed; the last one kept while the DB is down)."""
        with self._lock:
            now = self._now()
            if self._view is not None and now - self._checked_at < self._refresh_ms:
                return self._view
            try:
                version = self.run(lambda s: s.version())
                if self._view is None or version != self._view.version:
                    self._view = build_view(*self.run(lambda s: s.current()))
                self._checked_at = now
            except CatalogDown:
                if self._view is None:
                    raise
            return self._view

    def invalidate(self) -> None:
        """Forget the cached view (after this process applied a change)."""
        with self._lock:
            self._checked_at = 0

    def close(self) -> None:
        with self._lock:
            self._drop()
