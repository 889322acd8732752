"""The catalog: browse and search companies, sites, devices, channels and rules; edit one entity, or many at
once (one field on the selected rules, channels or devices), or import devices from CSV. Every edit becomes a
draft change set, reviewed (problems at their place, impact) before it is applied."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath

from wenu_stream.catalog.changes import CSV_COLUMNS, KINDS, decode_operations, flatten, plan
from wenu_stream.web import tenancy
from wenu_stream.web.pages.change_pages import new_draft
from wenu_stream.web.pages.common import by_field, caller, form_lists, form_of, problem_text
from wenu_stream.web.pages.render import redirect, render

EDITABLE: dict[str, tuple[str, ...]] = {
    "company": ("name",),
    "site": ("company", "name", "timezone"),
    "device": ("site",),
    "channel": ("series", "kind", "unit", "scale", "offset"),
}
BULK: dict[str, tuple[str, ...]] = {
    "rule": (
        "severity",
        "value",
        "clear",
        "for_s",
        "after_s",
        "count",
        "max_abs_delta_per_min",
        "max",
        "window",
    ),
    "channel": ("unit", "scale", "offset", "kind"),
    "device": ("site",),
}
NUMBERS = {"scale", "offset", "value", "clear", "for_s", "after_s", "count", "max_abs_delta_per_min", "max"}
PARENTS = {"site": "company", "device": "site", "channel": "device"}


def coerce(name: str, text: str) -> Any:
    """A form value as the document holds it: numbers for numeric fields (kept as text when not one)."""
    text = text.strip()
    if name in NUMBERS:
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() and name == "count" else number
    return text


def _entities(request: Request[Any, Any, Any]) -> tuple[Any, dict[str, dict[str, dict[str, Any]]]]:
    services, p = caller(request)
    tenancy.staff_only(p)
    view = services.catalog.view()
    return view, flatten(msgspec.to_builtins(view.document))


def search(entities: dict[str, dict[str, dict[str, Any]]], q: str, kind: str | None) -> dict[str, list[Any]]:
    """Entities of each kind (or one) whose id or any field value contains ``q`` (case-insensitive)."""
    needle = q.lower().strip()
    out: dict[str, list[Any]] = {}
    for k in KINDS:
        if kind and k != kind:
            continue
        rows = [(key, fields) for key, fields in sorted(entities[k].items())
                if not needle or needle in key.lower() or any(needle in str(v).lower() for v in fields.values())]  # fmt: skip
        out[k] = rows
    return out


@get("/ui/catalog", include_in_schema=False, sync_to_thread=True)
def browse(request: Request[Any, Any, Any]) -> Response[str]:
    view, entities = _entities(request)
    q = request.query_params.get("q", "")
    kind = request.query_params.get("kind") or None
    found = search(entities, q, kind if kind in KINDS else None)
    return render(request, "catalog.html", fragment="results", found=found, q=q, kind=kind or "", kinds=KINDS,
                  bulk=BULK, version=view.version)  # fmt: skip


@get("/ui/catalog/{kind:str}/{entity_id:path}", include_in_schema=False, sync_to_thread=True)
def entity(request: Request[Any, Any, Any], kind: FromPath[str], entity_id: FromPath[str]) -> Response[str]:
    """One entity's fields in a form (a rule opens the rule editor); ``new`` for a new one."""
    entity_id = entity_id.lstrip("/")
    if kind == "rule":
        return redirect(request, f"/ui/rules/{entity_id}")
    if kind not in EDITABLE:
        raise NotFoundException(f"no kind {kind!r}")
    _, entities = _entities(request)
    if entity_id == "new":
        fields = {k: request.query_params.get(k, "") for k in ("id", *EDITABLE[kind], "device", "ch")}
        return render(request, "entity.html", kind=kind, entity_id="", fields=fields, editable=EDITABLE[kind],
                      errors={}, general=[], new=True)  # fmt: skip
    found = entities[kind].get(entity_id)
    if found is None:
        raise NotFoundException(f"no {kind} {entity_id!r}")
    return render(request, "entity.html", kind=kind, entity_id=entity_id, fields=found, editable=EDITABLE[kind],
                  errors={}, general=[], new=False)  # fmt: skip


@post("/ui/catalog/{kind:str}/{entity_id:path}", include_in_schema=False)
async def save_entity(
    request: Request[Any, Any, Any], kind: FromPath[str], entity_id: FromPath[str]
) -> Response[str]:
    """Keep the edit (or the new entity, or its retirement) as a draft change set; problems at their field."""
    entity_id = entity_id.lstrip("/")
    if kind not in EDITABLE:
        raise NotFoundException(f"no kind {kind!r}")
    form = await form_of(request)
    view, entities = _entities(request)
    new = entity_id == "new"
    if form.get("retire") == "1" and not new:
        op: dict[str, Any] = {"op": "retire", "kind": kind, "id": entity_id}
    elif new:
        value = {k: coerce(k, v) for k, v in form.items() if k not in ("reason", "retire") and v.strip()}
        op = {"op": "create", "kind": kind, "value": value}
    else:
        changed = {k: coerce(k, form[k]) for k in EDITABLE[kind] if k in form
                   and coerce(k, form[k]) != entities[kind][entity_id].get(k)}  # fmt: skip
        op = {"op": "update", "kind": kind, "id": entity_id, "set": changed}
    ops, problems = decode_operations([op])
    planned = plan(view.document, ops) if ops else None
    at, rest = by_field(
        [*problems, *(planned.problems if planned else ())], {"id", "device", "ch", *EDITABLE[kind]}
    )
    if op["op"] == "update" and not op["set"]:
        rest.append("nothing changed")
    if at or rest:
        fields = {**(entities[kind].get(entity_id, {}) if not new else {}), **form}
        return render(request, "entity.html", kind=kind, entity_id="" if new else entity_id, fields=fields,
                      editable=EDITABLE[kind], errors=at, general=rest, new=new, status_code=422)  # fmt: skip
    what = "retire" if op["op"] == "retire" else "add" if new else "edit"
    reason = (
        form.get("reason", "").strip()
        or f"{what} {kind} {entity_id if not new else op['value'].get('id', '')}"
    )
    return redirect(request, f"/ui/changes/{await new_draft(request, reason, [op])}")


@post("/ui/catalog/bulk", include_in_schema=False)
async def bulk_edit(request: Request[Any, Any, Any]) -> Response[str]:
    """One field set on every selected rule, channel or device: one ``set_where`` operation in a draft."""
    form = await form_of(request)
    kind, field = form.get("kind", ""), form.get("field", "")
    ids = await form_lists(request, "ids")
    if kind not in BULK or field not in BULK[kind]:
        raise HTTPException(status_code=400, detail=f"bulk edit: choose a field of {', '.join(BULK)}")
    if not ids:
        raise HTTPException(status_code=400, detail="bulk edit: select one or more entities")
    op = {
        "op": "set_where",
        "kind": kind,
        "where": {"ids": ids},
        "set": {field: coerce(field, form.get("value", ""))},
    }
    reason = form.get("reason", "").strip() or f"set {field} on {len(ids)} {kind}s"
    try:
        draft_id = await new_draft(request, reason, [op])
    except HTTPException as exc:
        raise HTTPException(status_code=exc.status_code, detail="; ".join(problem_text(exc))) from None
    return redirect(request, f"/ui/changes/{draft_id}")


@get("/ui/catalog/import", include_in_schema=False, sync_to_thread=True)
def import_form(request: Request[Any, Any, Any]) -> Response[str]:
    _view, entities = _entities(request)
    return render(request, "import.html", sites=sorted(entities["site"]), columns=CSV_COLUMNS)


@post("/ui/catalog/import", include_in_schema=False)
async def import_devices(request: Request[Any, Any, Any]) -> Response[str]:
    """Devices of a site from CSV (pasted or a file): a draft whose review is the preview (rows with problems
    named by line, the series it adds, the rules that bind them)."""
    form = await request.form()
    site = str(form.get("site", ""))
    upload = form.get("file")
    text = str(form.get("csv", "") or "")
    if upload is not None and hasattr(upload, "read"):
        content = await upload.read()
        text = content.decode("utf-8-sig") if content else text
    if not text.strip():
        raise HTTPException(status_code=400, detail="import: paste CSV text or choose a file")
    reason = str(form.get("reason", "")).strip() or f"import devices of {site}"
    draft_id = await new_draft(request, reason, [{"op": "devices_csv", "site": site, "csv": text}])
    return redirect(request, f"/ui/changes/{draft_id}")


ROUTES = [browse, import_form, import_devices, bulk_edit, entity, save_entity]
