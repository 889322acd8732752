"""Draft change sets, the audit log and machine API keys, kept in the catalog store (edge).

They live next to the catalog (RDS PostgreSQL in production, SQLite by
default) so that a draft is marked applied in the same transaction as the
version it produced, and so that the audit log has one home.

:func:`submit` is the one way a change set reaches the catalog: the API's
apply, ``catalog import`` and a restore all go through it.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any, Literal

import msgspec

from wenu_stream.catalog.changes import ChangeProblem, ChangeSet, Planned, decode_operations, plan
from wenu_stream.catalog.document import CatalogDocument
from wenu_stream.catalog.store import CatalogStore, ImportSummary, StaleVersion
from wenu_stream.errors import WenuError

DraftStatus = Literal["draft", "applied", "discarded"]
Role = Literal["viewer", "operator", "admin"]
KEY_PREFIX = "wsk_"


class InvalidChange(WenuError):
    """A change set was refused; ``problems`` lists every reason."""

    def __init__(self, problems: tuple[ChangeProblem, ...]) -> None:
        self.problems = problems
        super().__init__(f"invalid change set ({len(problems)} problems): " + "; ".join(map(str, problems)))


class UnknownVersion(WenuError):
    """A version that the catalog never had."""


def base_document(store: CatalogStore, base_version: int | None) -> tuple[int, CatalogDocument]:
    """The version and document a change applies to (``None``: the current one).

    Raises:
        UnknownVersion: the catalog never had ``base_version``.
    """
    if base_version is None:
        return store.current()
    document = store.document_at(base_version)
    if document is None:
        raise UnknownVersion(f"the catalog has no version {base_version}")
    return base_version, document


def check(store: CatalogStore, change: ChangeSet) -> tuple[CatalogDocument, Planned]:
    """The base document and the plan of ``change`` (no write)."""
    _, base = base_document(store, change.base_version)
    return base, plan(base, change.operations)


def submit(
    store: CatalogStore, change: ChangeSet, *, author: str, draft_id: str | None = None
) -> ImportSummary:
    """Validate ``change`` whole and apply it atomically against its base version.

    Raises:
        InvalidChange: every problem of the change set; nothing was written.
        StaleVersion: the catalog moved past ``change.base_version``.
        UnknownVersion: the base version never existed.
    """
    current = store.version()
    if change.base_version != current:
        raise StaleVersion(change.base_version, current)
    _, planned = check(store, change)
    if planned.document is None:
        raise InvalidChange(planned.problems)
    mark = None if draft_id is None else (lambda version: _mark_applied(store, draft_id, version))
    return store.apply(
        planned.document,
        base_version=change.base_version,
        author=author,
        reason=change.reason,
        change_set=msgspec.json.encode(change),
        within=mark,
    )


def decode_change_set(raw: object) -> tuple[ChangeSet | None, list[ChangeProblem]]:
    """A change set from decoded JSON, with every problem of its fields and operations."""
    if not isinstance(raw, dict):
        return None, [ChangeProblem(path="$", message="expected an object")]
    problems: list[ChangeProblem] = []
    base, reason = raw.get("base_version"), raw.get("reason")
    if not isinstance(base, int) or isinstance(base, bool) or base < 0:
        problems.append(
            ChangeProblem(path="$.base_version", message="expected the catalog version (an integer)")
        )
    if not isinstance(reason, str) or not reason.strip():
        problems.append(ChangeProblem(path="$.reason", message="say why (kept in the version history)"))
    for key in raw.keys() - {"base_version", "reason", "operations"}:
        problems.append(
            ChangeProblem(path=f"$.{key}", message="unknown field; known: base_version, reason, operations")
        )
    ops, op_problems = decode_operations(raw.get("operations"))
    problems.extend(op_problems)
    if problems:
        return None, problems
    return ChangeSet(base_version=int(base), reason=str(reason), operations=ops), []  # type: ignore[arg-type]


# ---------------------------------------------------------------- drafts


class Draft(msgspec.Struct, frozen=True, kw_only=True):
    """A change set being written: kept until applied or discarded."""

    id: str
    status: DraftStatus
    base_version: int
    author: str
    reason: str
    operations: list[Any]
    created_at: int
    updated_at: int
    applied_version: int | None = None


_DRAFT_COLUMNS = "id, status, base_version, author, reason, body, created_at, updated_at, applied_version"


def _draft(row: Any) -> Draft:
    id_, status, base, author, reason, body, created, updated, applied = row
    return Draft(
        id=id_,
        status=status,
        base_version=int(base),
        author=author,
        reason=reason,
        operations=msgspec.json.decode(body),
        created_at=int(created),
        updated_at=int(updated),
        applied_version=None if applied is None else int(applied),
    )


def create_draft(
    store: CatalogStore, *, author: str, reason: str, base_version: int, operations: list[Any]
) -> Draft:
    """Keep a new draft (its operations as given: a draft may be invalid while it is written)."""
    now = store.now()
    draft = Draft(
        id=uuid.uuid4().hex,
        status="draft",
        base_version=base_version,
        author=author,
        reason=reason,
        operations=operations,
        created_at=now,
        updated_at=now,
    )
    with store.transaction(write=True):
        store.execute(
            f"INSERT INTO change_sets ({_DRAFT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                draft.id,
                draft.status,
                base_version,
                author,
                reason,
                msgspec.json.encode(operations).decode(),
                now,
                now,
                None,
            ),
        )
    return draft


def get_draft(store: CatalogStore, draft_id: str) -> Draft | None:
    row = store.execute(f"SELECT {_DRAFT_COLUMNS} FROM change_sets WHERE id = ?", (draft_id,)).fetchone()
    return None if row is None else _draft(row)


def list_drafts(
    store: CatalogStore, *, status: str | None = None, limit: int = 50, before: int | None = None
) -> list[Draft]:
    """Drafts, most recently updated first (``before``: updated before this epoch ms)."""
    sql = f"SELECT {_DRAFT_COLUMNS} FROM change_sets WHERE updated_at < ?"
    params: list[Any] = [before if before is not None else 1 << 62]
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    rows = store.execute(sql + " ORDER BY updated_at DESC, id LIMIT ?", (*params, limit)).fetchall()
    return [_draft(r) for r in rows]


def update_draft(
    store: CatalogStore, draft_id: str, *, reason: str, base_version: int, operations: list[Any]
) -> Draft | None:
    """Replace a draft's content (only while it is a draft); None if there is no such draft."""
    with store.transaction(write=True):
        store.execute(
            "UPDATE change_sets SET reason = ?, base_version = ?, body = ?, updated_at = ?"
            " WHERE id = ? AND status = 'draft'",
            (reason, base_version, msgspec.json.encode(operations).decode(), store.now(), draft_id),
        )
    return get_draft(store, draft_id)


def discard_draft(store: CatalogStore, draft_id: str) -> None:
    with store.transaction(write=True):
        store.execute(
            "UPDATE change_sets SET status = 'discarded', updated_at = ? WHERE id = ? AND status = 'draft'",
            (store.now(), draft_id),
        )


def _mark_applied(store: CatalogStore, draft_id: str, version: int) -> None:
    store.execute(
        "UPDATE change_sets SET status = 'applied', applied_version = ?, updated_at = ? WHERE id = ?",
        (version, store.now(), draft_id),
    )


# ---------------------------------------------------------------- audit log


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One action of a person or machine: a change applied, an ack, a shelve."""

    id: str
    at: int
    actor: str
    action: str
    target: str
    company: str
    detail: dict[str, Any]


def audit(
    store: CatalogStore,
    *,
    actor: str,
    action: str,
    target: str,
    company: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        id=uuid.uuid4().hex,
        at=store.now(),
        actor=actor,
        action=action,
        target=target,
        company=company,
        detail=detail or {},
    )
    with store.transaction(write=True):
        store.execute(
            "INSERT INTO audit_log (id, at, actor, action, target, company, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (entry.id, entry.at, actor, action, target, company, msgspec.json.encode(entry.detail).decode()),
        )
    return entry


def audit_entries(
    store: CatalogStore,
    *,
    company: str | None = None,
    target: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """Audit entries, newest first, optionally of one company or one target."""
    sql = "SELECT id, at, actor, action, target, company, detail FROM audit_log WHERE at < ?"
    params: list[Any] = [before if before is not None else 1 << 62]
    for column, value in (("company", company), ("target", target)):
        if value is not None:
            sql += f" AND {column} = ?"
            params.append(value)
    rows = store.execute(sql + " ORDER BY at DESC, id LIMIT ?", (*params, limit)).fetchall()
    return [
        AuditEntry(id=i, at=int(a), actor=ac, action=act, target=t, company=c, detail=msgspec.json.decode(d))
        for i, a, ac, act, t, c, d in rows
    ]


# ---------------------------------------------------------------- API keys


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A machine client's key (the secret itself is never stored: only its SHA-256)."""

    id: str
    name: str
    role: Role
    company: str  # "" for a staff key
    created_at: int
    revoked_at: int | None = None


def _digest(secret: str) -> str:
    # The secret is 32 random bytes, so a fast hash is enough: there is nothing to guess by brute force.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(store: CatalogStore, *, name: str, role: Role, company: str = "") -> tuple[str, ApiKey]:
    """Make a key; return the key text (shown once) and its record."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    info = ApiKey(id=key_id, name=name, role=role, company=company, created_at=store.now())
    with store.transaction(write=True):
        store.execute(
            "INSERT INTO api_keys (id, hash, name, role, company, created_at, revoked_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key_id, _digest(secret), name, role, company, info.created_at, None),
        )
    return f"{KEY_PREFIX}{key_id}_{secret}", info


def verify_api_key(store: CatalogStore, text: str) -> ApiKey | None:
    """The record of a valid, unrevoked key, or None."""
    if not text.startswith(KEY_PREFIX):
        return None
    key_id, _, secret = text.removeprefix(KEY_PREFIX).partition("_")
    row = store.execute(
        "SELECT hash, name, role, company, created_at, revoked_at FROM api_keys WHERE id = ?", (key_id,)
    ).fetchone()
    if row is None or row[5] is not None or not secrets.compare_digest(row[0], _digest(secret)):
        return None
    return ApiKey(id=key_id, name=row[1], role=row[2], company=row[3], created_at=int(row[4]))


def revoke_api_key(store: CatalogStore, key_id: str) -> None:
    with store.transaction(write=True):
        store.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (store.now(), key_id)
        )
