"""Change sets and versions: review a draft (every problem, then the impact), apply it with a reason, discard it;
the version history with author and reason, the diff of any two versions, and restore (a new draft)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath

from wenu_stream.web import catalog_routes
from wenu_stream.web.pages.common import call, caller, form_of, problem_text
from wenu_stream.web.pages.render import redirect, render


async def new_draft(request: Request[Any, Any, Any], reason: str, operations: list[dict[str, Any]]) -> str:
    """Keep a draft change set against the current version; return its id."""
    made = await call(catalog_routes.create_change_set, request,
                      data=catalog_routes.DraftBody(reason=reason, operations=operations))  # fmt: skip
    return str(made.draft.id)


@get("/ui/changes", include_in_schema=False)
async def change_sets(request: Request[Any, Any, Any]) -> Response[str]:
    status = request.query_params.get("status") or "draft"
    page = await call(catalog_routes.list_change_sets, request, status=status if status != "all" else None,
                      limit=100, cursor=None)  # fmt: skip
    return render(request, "changes.html", drafts=page.items, status=status)


async def _review(request: Request[Any, Any, Any], draft_id: str, errors: list[str] | None = None,
                  status_code: int = 200) -> Response[str]:  # fmt: skip
    shown = await call(catalog_routes.show_change_set, request, draft_id=draft_id)
    impact = None
    if shown.validation.valid and shown.draft.status == "draft":
        try:
            impact = (await call(catalog_routes.change_set_impact, request, draft_id=draft_id)).impact
        except HTTPException as exc:
            errors = (errors or []) + problem_text(exc)
    operations = msgspec.json.format(msgspec.json.encode(shown.draft.operations), indent=2).decode()
    return render(request, "change.html", draft=shown.draft, validation=shown.validation, impact=impact,
                  operations=operations, errors=errors or [], status_code=status_code)  # fmt: skip


@get("/ui/changes/{draft_id:str}", include_in_schema=False)
async def review(request: Request[Any, Any, Any], draft_id: FromPath[str]) -> Response[str]:
    return await _review(request, draft_id)


@post("/ui/changes/{draft_id:str}/apply", include_in_schema=False)
async def apply(request: Request[Any, Any, Any], draft_id: FromPath[str]) -> Response[str]:
    """Apply with the reason given here (kept in the version history); 409/422 are shown on the review page."""
    form = await form_of(request)
    reason = form.get("reason", "").strip()
    if not reason:
        return await _review(request, draft_id, errors=["reason: say why (it is kept in the version history)"],
                             status_code=422)  # fmt: skip
    try:
        shown = await call(catalog_routes.show_change_set, request, draft_id=draft_id)
        if reason != shown.draft.reason:
            await call(catalog_routes.edit_change_set, request, draft_id=draft_id, data=catalog_routes.DraftBody(
                reason=reason, base_version=shown.draft.base_version, operations=shown.draft.operations))  # fmt: skip
        applied = await call(catalog_routes.apply_change_set, request, draft_id=draft_id, if_match=None)
    except HTTPException as exc:
        if exc.status_code in (409, 422):
            return await _review(request, draft_id, errors=problem_text(exc), status_code=exc.status_code)
        raise
    return redirect(request, f"/ui/versions?applied={applied.version}")


@post("/ui/changes/{draft_id:str}/discard", include_in_schema=False)
async def discard(request: Request[Any, Any, Any], draft_id: FromPath[str]) -> Response[str]:
    await call(catalog_routes.discard_change_set, request, draft_id=draft_id)
    return redirect(request, "/ui/changes")


@get("/ui/versions", include_in_schema=False)
async def versions(request: Request[Any, Any, Any]) -> Response[str]:
    page = await call(catalog_routes.list_versions, request, limit=100, cursor=None)
    applied = request.query_params.get("applied")
    flash = (
        f"Applied: the catalog is now at version {applied}. Workers pick it up on their next refresh."
        if applied
        else None
    )
    return render(request, "versions.html", versions=page.items, flash=flash)


@get("/ui/versions/diff", include_in_schema=False)
async def version_diff(request: Request[Any, Any, Any]) -> Response[str]:
    services, _ = caller(request)
    try:
        a = int(request.query_params.get("from", ""))
        b = int(request.query_params.get("to") or services.catalog.view().version)
    except ValueError:
        raise HTTPException(status_code=400, detail="from/to: give two version numbers") from None
    found = await call(catalog_routes.diff_versions, request, from_version=a, to_version=b)
    return render(request, "diff.html", diff=found)


@post("/ui/versions/{version:int}/restore", include_in_schema=False)
async def restore(request: Request[Any, Any, Any], version: FromPath[int]) -> Response[str]:
    """A new draft that makes the catalog equal to ``version`` again: reviewed (impact) before it is applied."""
    form = await form_of(request)
    made = await call(catalog_routes.restore_version, request, version=version,
                      data=catalog_routes.RestoreBody(reason=form.get("reason", "")))  # fmt: skip
    return redirect(request, f"/ui/changes/{made.draft.id}")


ROUTES = [change_sets, review, apply, discard, versions, version_diff, restore]
