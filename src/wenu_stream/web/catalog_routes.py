"""Catalog routes: the current catalog, draft change sets (validate, impact, apply), versions, diff, restore.

Staff only. Reading needs ``viewer``; writing drafts and applying needs
``admin``. Apply goes through ``catalog.workspace.submit``, the same path as
``wenu-stream catalog import``.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post, put
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from wenu_stream.aws.readers import scan_instances
from wenu_stream.catalog.changes import ChangeProblem, ChangeSet
from wenu_stream.catalog.document import CatalogDocument
from wenu_stream.catalog.impact import EntityChange, Impact, diff, impact
from wenu_stream.catalog.store import CatalogStore, ImportSummary, StaleVersion, VersionInfo
from wenu_stream.catalog.workspace import (
    Draft,
    InvalidChange,
    audit,
    check,
    create_draft,
    decode_change_set,
    discard_draft,
    get_draft,
    list_drafts,
    submit,
    update_draft,
)
from wenu_stream.web import tenancy
from wenu_stream.web.auth import Principal, Role
from wenu_stream.web.context import ApiServices, principal_of, services_of, threaded
from wenu_stream.web.params import Page, limit_of


class DraftBody(msgspec.Struct, kw_only=True):
    """A change set as written: operations are checked whole by the API (every problem, not the first)."""

    reason: str = ""
    base_version: int | None = None  # default: the current version
    operations: list[dict[str, Any]] = []


class RestoreBody(msgspec.Struct, kw_only=True):
    reason: str = ""


class Validation(msgspec.Struct, kw_only=True):
    valid: bool
    base_version: int
    current_version: int
    stale: bool  # the catalog moved past the base version: apply would be refused (409)
    problems: list[ChangeProblem]
    warnings: list[ChangeProblem]


class DraftView(msgspec.Struct, kw_only=True):
    draft: Draft
    validation: Validation


class ImpactView(msgspec.Struct, kw_only=True):
    validation: Validation
    impact: Impact


class Applied(msgspec.Struct, kw_only=True):
    version: int
    summary: ImportSummary
    draft: Draft


class CatalogAt(msgspec.Struct, kw_only=True):
    version: int
    info: VersionInfo | None
    document: CatalogDocument


class Diff(msgspec.Struct, kw_only=True):
    from_version: int
    to_version: int
    changes: list[EntityChange]


def _caller(request: Request[Any, Any, Any], role: Role) -> tuple[ApiServices, Principal]:
    p = principal_of(request)
    tenancy.staff_only(p)
    tenancy.require(p, role)
    return services_of(request), p


def _draft_or_404(store: CatalogStore, draft_id: str) -> Draft:
    draft = get_draft(store, draft_id)
    if draft is None:
        raise NotFoundException(f"no change set {draft_id!r}")
    return draft


def _validate(store: CatalogStore, draft: Draft) -> tuple[Validation, ChangeSet | None, Any]:
    current = store.version()
    change, problems = decode_change_set(
        {"base_version": draft.base_version, "reason": draft.reason, "operations": draft.operations}
    )
    base = planned = None
    if change is not None:
        if store.document_at(change.base_version) is None:
            problems = [
                ChangeProblem(
                    path="$.base_version", message=f"the catalog has no version {draft.base_version}"
                )
            ]
        else:
            base, planned = check(store, change)
            problems = list(planned.problems)
    validation = Validation(
        valid=not problems,
        base_version=draft.base_version,
        current_version=current,
        stale=draft.base_version != current,
        problems=problems,
        warnings=list(planned.warnings) if planned else [],
    )
    return validation, change, (base, planned)


def _view(store: CatalogStore, draft: Draft) -> DraftView:
    return DraftView(draft=draft, validation=_validate(store, draft)[0])


@get("/api/v1/catalog", tags=["catalog"])
@threaded
def current_catalog(request: Request[Any, Any, Any]) -> CatalogAt:
    """The active catalog and its version."""
    services, _ = _caller(request, "viewer")
    view = services.catalog.view()
    return CatalogAt(version=view.version, info=None, document=view.document)


@post("/api/v1/changesets", tags=["change sets"], status_code=201)
@threaded
def create_change_set(request: Request[Any, Any, Any], data: JSONBody[DraftBody]) -> DraftView:
    """Keep a draft change set (even an invalid one) and say what is wrong with it."""
    services, p = _caller(request, "admin")

    def run(store: CatalogStore) -> DraftView:
        base = store.version() if data.base_version is None else data.base_version
        draft = create_draft(
            store, author=p.subject, reason=data.reason, base_version=base, operations=data.operations
        )
        return _view(store, draft)

    return services.catalog.run(run)


@get("/api/v1/changesets", tags=["change sets"])
@threaded
def list_change_sets(
    request: Request[Any, Any, Any],
    status: FromQuery[str | None] = None,
    limit: FromQuery[int] = 50,
    cursor: FromQuery[int | None] = None,
) -> Page:
    """Change sets, most recently updated first (``cursor``: the ``updated_at`` to continue below)."""
    services, _ = _caller(request, "viewer")
    drafts = services.catalog.run(
        lambda s: list_drafts(s, status=status, limit=limit_of(limit), before=cursor)
    )
    return Page(items=drafts, next=str(drafts[-1].updated_at) if len(drafts) == limit else None)


@get("/api/v1/changesets/{draft_id:str}", tags=["change sets"])
@threaded
def show_change_set(request: Request[Any, Any, Any], draft_id: FromPath[str]) -> DraftView:
    services, _ = _caller(request, "viewer")
    return services.catalog.run(lambda s: _view(s, _draft_or_404(s, draft_id)))


@put("/api/v1/changesets/{draft_id:str}", tags=["change sets"])
@threaded
def edit_change_set(
    request: Request[Any, Any, Any], draft_id: FromPath[str], data: JSONBody[DraftBody]
) -> DraftView:
    """Replace a draft's reason, base version and operations (only while it is a draft)."""
    services, _ = _caller(request, "admin")

    def run(store: CatalogStore) -> DraftView:
        draft = _draft_or_404(store, draft_id)
        if draft.status != "draft":
            raise HTTPException(status_code=409, detail=f"change set {draft_id} is {draft.status}")
        base = draft.base_version if data.base_version is None else data.base_version
        updated = update_draft(
            store, draft_id, reason=data.reason, base_version=base, operations=data.operations
        )
        assert updated is not None
        return _view(store, updated)

    return services.catalog.run(run)


@delete("/api/v1/changesets/{draft_id:str}", tags=["change sets"], status_code=204)
@threaded
def discard_change_set(request: Request[Any, Any, Any], draft_id: FromPath[str]) -> None:
    services, _ = _caller(request, "admin")

    def discard(store: Any) -> None:
        _draft_or_404(store, draft_id)
        discard_draft(store, draft_id)

    services.catalog.run(discard)


@post("/api/v1/changesets/{draft_id:str}/validate", tags=["change sets"], status_code=200)
@threaded
def validate_change_set(request: Request[Any, Any, Any], draft_id: FromPath[str]) -> Validation:
    """Every problem of the change set, by JSON path, and whether its base version is still current."""
    services, _ = _caller(request, "viewer")
    return services.catalog.run(lambda s: _validate(s, _draft_or_404(s, draft_id))[0])


def _firing(services: ApiServices) -> list[tuple[str, str, str]]:
    table = services.config.alarms.state_table
    out: list[tuple[str, str, str]] = []
    for state in ("firing", "pending"):
        out.extend(
            (i["rule"]["S"], i["series"]["S"], state)
            for i in scan_instances(services.dynamodb, table, state=state)
        )
    return out


@get("/api/v1/changesets/{draft_id:str}/impact", tags=["change sets"])
@threaded
def change_set_impact(request: Request[Any, Any, Any], draft_id: FromPath[str]) -> ImpactView:
    """What applying would do: series, rule bindings, firing alarms kept/reset/dropped, stats to rebuild (422 when
    the change set is invalid)."""
    services, _ = _caller(request, "viewer")
    validation, _, (base, planned) = services.catalog.run(lambda s: _validate(s, _draft_or_404(s, draft_id)))
    if not validation.valid:
        raise HTTPException(
            status_code=422,
            detail="invalid change set",
            extra={"problems": msgspec.to_builtins(validation.problems)},
        )
    return ImpactView(validation=validation, impact=impact(base, planned.document, _firing(services)))


@post("/api/v1/changesets/{draft_id:str}/apply", tags=["change sets"], status_code=200)
@threaded
def apply_change_set(
    request: Request[Any, Any, Any],
    draft_id: FromPath[str],
    if_match: Annotated[str | None, HeaderParameter(name="If-Match")] = None,
) -> Applied:
    """Apply atomically against the draft's base version (``If-Match: <version>`` must agree when sent):
    409 when the catalog moved on, 422 with every problem when invalid."""
    services, p = _caller(request, "admin")

    def run(store: CatalogStore) -> Applied:
        draft = _draft_or_404(store, draft_id)
        if draft.status != "draft":
            raise HTTPException(status_code=409, detail=f"change set {draft_id} is {draft.status}")
        if if_match is not None and if_match.strip('"W/') != str(draft.base_version):
            raise HTTPException(
                status_code=409,
                detail=f"If-Match {if_match} is not the draft's base version {draft.base_version}",
            )
        change, problems = decode_change_set(
            {"base_version": draft.base_version, "reason": draft.reason, "operations": draft.operations}
        )
        if change is None:
            raise HTTPException(
                status_code=422,
                detail="invalid change set",
                extra={"problems": msgspec.to_builtins(problems)},
            )
        try:
            summary = submit(store, change, author=p.subject, draft_id=draft_id)
        except StaleVersion as exc:
            raise HTTPException(
                status_code=409,
                detail=str(exc),
                extra={"base_version": exc.base, "current_version": exc.current},
            ) from None
        except InvalidChange as exc:
            raise HTTPException(
                status_code=422,
                detail="invalid change set",
                extra={"problems": msgspec.to_builtins(exc.problems)},
            ) from None
        audit(
            store,
            actor=p.subject,
            action="catalog.apply",
            target=f"catalog:v{summary.version}",
            detail={"change_set": draft_id, "reason": draft.reason, "changed": summary.changed},
        )
        return Applied(version=summary.version, summary=summary, draft=_draft_or_404(store, draft_id))

    applied = services.catalog.run(run)
    services.catalog.invalidate()
    return applied


@get("/api/v1/catalog/versions", tags=["versions"])
@threaded
def list_versions(
    request: Request[Any, Any, Any], limit: FromQuery[int] = 50, cursor: FromQuery[int | None] = None
) -> Page:
    """Versions, newest first, with author, time and reason (``cursor``: continue below that version)."""
    services, _ = _caller(request, "viewer")
    found = services.catalog.run(lambda s: s.versions(before=cursor, limit=limit_of(limit)))
    return Page(items=found, next=str(found[-1].version) if len(found) == limit else None)


@get("/api/v1/catalog/versions/{version:int}", tags=["versions"])
@threaded
def show_version(request: Request[Any, Any, Any], version: FromPath[int]) -> CatalogAt:
    services, _ = _caller(request, "viewer")

    def run(store: CatalogStore) -> CatalogAt:
        document = store.document_at(version)
        if document is None:
            raise NotFoundException(f"no catalog version {version}")
        return CatalogAt(version=version, info=store.version_info(version), document=document)

    return services.catalog.run(run)


@get("/api/v1/catalog/diff", tags=["versions"])
@threaded
def diff_versions(
    request: Request[Any, Any, Any],
    from_version: Annotated[int, QueryParameter(name="from")],
    to_version: Annotated[int | None, QueryParameter(name="to")] = None,
) -> Diff:
    """What changed from one version to another (``to`` defaults to the current version)."""
    services, _ = _caller(request, "viewer")

    def run(store: CatalogStore) -> Diff:
        to = store.version() if to_version is None else to_version
        a, b = store.document_at(from_version), store.document_at(to)
        if a is None or b is None:
            raise NotFoundException(f"no catalog version {from_version if a is None else to}")
        return Diff(from_version=from_version, to_version=to, changes=diff(a, b))

    return services.catalog.run(run)


@post("/api/v1/catalog/versions/{version:int}/restore", tags=["versions"], status_code=201)
@threaded
def restore_version(
    request: Request[Any, Any, Any], version: FromPath[int], data: JSONBody[RestoreBody]
) -> DraftView:
    """A new draft change set that makes the catalog equal to ``version`` again (review its impact, then apply)."""
    services, p = _caller(request, "admin")

    def run(store: CatalogStore) -> DraftView:
        document = store.document_at(version)
        if document is None:
            raise NotFoundException(f"no catalog version {version}")
        draft = create_draft(
            store,
            author=p.subject,
            reason=data.reason or f"restore version {version}",
            base_version=store.version(),
            operations=[{"op": "replace", "document": msgspec.to_builtins(document)}],
        )
        return _view(store, draft)

    return services.catalog.run(run)


ROUTES = [
    current_catalog,
    create_change_set,
    list_change_sets,
    show_change_set,
    edit_change_set,
    discard_change_set,
    validate_change_set,
    change_set_impact,
    apply_change_set,
    list_versions,
    show_version,
    diff_versions,
    restore_version,
]
