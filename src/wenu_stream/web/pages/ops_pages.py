"""Operations (staff): per application the checkpoint and lag of each shard, dead letters by reason with a
re-drive (operator), and the quarantine with its re-drive once the catalog maps the devices (operator)."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException, PermissionDeniedException

from wenu_stream.aws.dead_letters import count_by_reason, letter_prefix
from wenu_stream.catalog.workspace import audit
from wenu_stream.log import get_logger
from wenu_stream.records.rejections import Reason
from wenu_stream.web import read_routes, tenancy
from wenu_stream.web.catalog_access import CatalogDown
from wenu_stream.web.pages.common import call, caller, form_of
from wenu_stream.web.pages.render import render
from wenu_stream.web.pages.session import backoffice_of

APPS = ("processing", "alarms")


async def _checkpoints(request: Request[Any, Any, Any], app: str) -> dict[str, Any]:
    try:
        page = await call(read_routes.app_checkpoints, request, app=app, lag=True)
    except HTTPException as exc:
        return {"app": app, "rows": [], "note": str(exc.detail)}
    return {"app": app, "rows": page.items, "note": None}


async def _letters(request: Request[Any, Any, Any], app: str) -> dict[str, int]:
    services, _ = caller(request)
    cfg = services.config
    prefix = letter_prefix(cfg.sinks.dead_letter_prefix, app, cfg.kinesis.stream)
    return await anyio.to_thread.run_sync(count_by_reason, services.s3, cfg.sinks.bucket, prefix)


async def _page(request: Request[Any, Any, Any], message: str | None = None) -> Response[str]:
    _, p = caller(request)
    tenancy.staff_only(p)
    apps = [await _checkpoints(request, app) for app in APPS]
    letters = {app: await _letters(request, app) for app in APPS}
    quarantine = (await call(read_routes.quarantine, request)).items
    backoffice = backoffice_of(request)
    return render(request, "ops.html", fragment="ops", apps=apps, letters=letters, quarantine=quarantine,
                  reasons=[r.value for r in Reason], message=message,
                  can_redrive=p.at_least("operator") and backoffice.redrive_letters is not None,
                  can_redrive_quarantine=p.at_least("operator") and backoffice.redrive_quarantine is not None)  # fmt: skip


@get("/ui/ops", include_in_schema=False)
async def operations(request: Request[Any, Any, Any]) -> Response[str]:
    return await _page(request)


def _operator(request: Request[Any, Any, Any]) -> Any:
    services, p = caller(request)
    tenancy.staff_only(p)
    if not p.at_least("operator"):
        raise PermissionDeniedException("re-drive needs the operator role")
    return services, p


def _audited(services: Any, p: Any, action: str, target: str, detail: dict[str, Any]) -> None:
    try:
        services.catalog.run(lambda s: audit(s, actor=p.subject, action=action, target=target, detail=detail))
    except CatalogDown as exc:  # the re-drive happened; say so in the log rather than hide it
        get_logger("wenu.api").warning("audit_unavailable", action=action, error=str(exc))


@post("/ui/ops/redrive-letters", include_in_schema=False)
async def redrive_letters(request: Request[Any, Any, Any]) -> Response[str]:
    """Decode the letters of an app (of one reason) with the current key ring; the ones that now decode go back
    to the stream (``ops.redrive``), the others stay."""
    services, p = _operator(request)
    form = await form_of(request)
    app, reason = form.get("app", "processing"), form.get("reason") or None
    if app not in APPS or (reason is not None and reason not in {r.value for r in Reason}):
        raise HTTPException(status_code=400, detail="re-drive: unknown application or reason")
    action = backoffice_of(request).redrive_letters
    result = await anyio.to_thread.run_sync(action, app, reason)
    _audited(services, p, "deadletters.redrive", f"deadletters:{app}/{reason or '*'}", result)
    return await _page(request, message=f"Re-drive of {app} {reason or 'all reasons'}: {result}")


@post("/ui/ops/redrive-quarantine", include_in_schema=False)
async def redrive_quarantine(request: Request[Any, Any, Any]) -> Response[str]:
    """Process the quarantined readings the catalog now maps (stats, warehouse), keep the rest."""
    services, p = _operator(request)
    result = await anyio.to_thread.run_sync(backoffice_of(request).redrive_quarantine)
    _audited(services, p, "quarantine.redrive", "quarantine:processing", result)
    return await _page(request, message=f"Quarantine re-drive: {result}")


ROUTES = [operations, redrive_letters, redrive_quarantine]
