"""The rule editor: a form per rule type, checked as you type (problems at their field), a preview of what the
draft would have fired over the last days drawn over the series beside what was notified, and "save as a draft
change set" (then review its impact and apply)."""

from __future__ import annotations

import functools
from typing import Any, Literal

import anyio.to_thread
import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath

from wenu_stream.alarms.rules import matches, parse_rules
from wenu_stream.catalog.changes import Upsert, plan
from wenu_stream.catalog.document import RULE_TYPES
from wenu_stream.web import alarm_routes, read_routes, tenancy
from wenu_stream.web.pages.change_pages import new_draft
from wenu_stream.web.pages.common import by_field, call, caller, chart_spec, form_of, marker, problem_text
from wenu_stream.web.pages.render import redirect, render
from wenu_stream.web.params import iso

COMMON = ("id", "severity", "series", "match_company", "match_site", "match_unit", "match_kind")
FIELDS: dict[str, tuple[str, ...]] = {
    "threshold": ("op", "value", "clear", "for_s"),
    "rate_of_change": ("max_abs_delta_per_min",),
    "stuck": ("count",),
    "no_data": ("after_s",),
    "consumption": ("window", "max"),
}
NUMBERS = {"value", "clear", "for_s", "max_abs_delta_per_min", "count", "after_s", "max"}
assert set(FIELDS) == set(RULE_TYPES)


def _number(text: str) -> float | int | str:
    try:
        number = float(text)
    except ValueError:
        return text  # kept as written: validation says "expected a number" at the field
    return int(number) if number.is_integer() and "." not in text else number


def rule_from_form(form: dict[str, str]) -> dict[str, Any]:
    """The rule a form describes, as the catalog document writes it (empty optional fields left out)."""
    kind = form.get("type", "threshold")
    rule: dict[str, Any] = {
        "type": kind,
        "id": form.get("id", "").strip(),
        "severity": form.get("severity", ""),
    }
    if form.get("target", "series") == "series":
        rule["series"] = form.get("series", "").strip()
    else:
        rule["match"] = {k: form[f"match_{k}"].strip() for k in ("company", "site", "unit", "kind")
                         if form.get(f"match_{k}", "").strip()}  # fmt: skip
    for name in FIELDS.get(kind, ()):
        text = form.get(name, "").strip()
        if text:
            rule[name] = _number(text) if name in NUMBERS else text
    return rule


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def form_from_rule(rule: dict[str, Any]) -> dict[str, str]:
    form = {k: _text(v) for k, v in rule.items() if k != "match"}
    for k, v in (rule.get("match") or {}).items():
        form[f"match_{k}"] = str(v)
    form["target"] = "match" if rule.get("match") else "series"
    return form


def check_rule(document: Any, rule: dict[str, Any], existing: bool) -> tuple[dict[str, list[str]], list[str]]:
    """Every problem the catalog would report if the rule were saved, keyed by the form field they name."""
    planned = plan(document, [Upsert(kind="rule", value=rule)])
    fields = set(COMMON) | {f for names in FIELDS.values() for f in names} | {"type"}
    at, rest = by_field(planned.problems, fields)
    if not existing and any(r.id == rule.get("id") for r in document.alarm_rules):
        at.setdefault("id", []).append("a rule with this id exists: open it to edit it, or choose another id")
    return at, rest


def _editor(
    request: Request[Any, Any, Any], form: dict[str, str], existing: bool, **extra: Any
) -> Response[str]:
    services, _ = caller(request)
    view = services.catalog.view()
    rule = rule_from_form(form)
    at, rest = check_rule(view.document, rule, existing)
    choices = _preview_series(view, rule)
    context: dict[str, Any] = {"form": form, "kind": form.get("type", "threshold"), "fields": FIELDS, "types": RULE_TYPES,
               "existing": existing, "errors": at, "general": rest, "series_ids": sorted(view.snapshot.series),
               "choices": choices, "valid": not at and not rest, "preview": None, "message": None}  # fmt: skip
    context.update(extra)
    return render(request, "rule.html", fragment="editor", **context)


def _preview_series(view: Any, rule: dict[str, Any]) -> list[str]:
    """The series a rule (even an invalid one) would watch: where its preview can run."""
    try:
        parsed = parse_rules([rule])[0]
    except msgspec.ValidationError:
        return [rule["series"]] if rule.get("series") in view.snapshot.series else []
    return sorted(s for s, info in view.snapshot.series.items() if matches(parsed, info))[:200]


async def editor(request: Request[Any, Any, Any], form: dict[str, str], existing: bool) -> Response[str]:
    """The editor rendered off the event loop (it reads the catalog and validates the whole document)."""
    return await anyio.to_thread.run_sync(functools.partial(_editor, request, form, existing))


@get("/ui/rules/{rule_id:str}", include_in_schema=False, sync_to_thread=True)
def edit_rule(request: Request[Any, Any, Any], rule_id: FromPath[str]) -> Response[str]:
    services, p = caller(request)
    tenancy.staff_only(p)
    view = services.catalog.view()
    if rule_id == "new":
        kind = request.query_params.get("type", "threshold")
        return _editor(request, {"type": kind if kind in FIELDS else "threshold", "severity": "major",
                                 "target": "series"}, existing=False)  # fmt: skip
    found = next((r for r in view.document.alarm_rules if r.id == rule_id), None)
    if found is None:
        raise NotFoundException(f"no rule {rule_id!r}")
    return _editor(request, form_from_rule(msgspec.to_builtins(found)), existing=True)


@post("/ui/rules/check", include_in_schema=False)
async def check(request: Request[Any, Any, Any]) -> Response[str]:
    """The editor again with the problems of what is typed (htmx, on every change)."""
    tenancy.staff_only(caller(request)[1])
    form = await form_of(request)
    return await editor(request, form, existing=form.get("existing") == "1")


@post("/ui/rules/preview", include_in_schema=False)
async def preview(request: Request[Any, Any, Any]) -> Response[str]:
    """What the draft would have fired over the last ``days`` on one series, next to what was notified."""
    form = await form_of(request)
    services, p = caller(request)
    tenancy.staff_only(p)
    rule = rule_from_form(form)
    days = max(1, min(31, int(form.get("days") or 7)))
    series = form.get("preview_series") or rule.get("series") or ""
    info = tenancy.series(p, services.catalog.view(), series) if series else None
    now = services.now_ms()
    timezone = info.timezone if info else "UTC"
    start, end = iso(now - days * 86_400_000, timezone), iso(now, timezone)
    try:
        source: Literal["stats", "warehouse"] = "warehouse" if form.get("source") == "warehouse" else "stats"
        result = await call(alarm_routes.preview_rule, request, data=alarm_routes.PreviewBody(
            rule=rule, series=series or None, start=start, end=end, source=source))  # fmt: skip
    except HTTPException as exc:
        return render(request, "rule.html", fragment="preview_result", preview=None,
                      preview_errors=problem_text(exc))  # fmt: skip
    windows = await call(read_routes.series_stats, request, series=result["series"], window="15m" if days <= 5 else "1h",
                         start=start, end=end, limit=500, cursor=None)  # fmt: skip
    markers = [marker(t["at"], t["to_state"], "would") for t in result["would_have"]]
    markers += [marker(t["at"], t["to_state"], "notified") for t in result["notified"]]
    levels = [{"value": rule[k], "label": f"{k} {rule[k]}", "color": c} for k, c in (("value", "#b3261e"), ("clear", "#2e7d32"))
              if isinstance(rule.get(k), int | float) and rule.get("type") == "threshold"]  # fmt: skip
    span = (start, end) if start and end else None
    spec = chart_spec(windows.items, windows.kind, windows.unit, windows.timezone, markers=markers, levels=levels,
                      span=span)  # fmt: skip
    return render(request, "rule.html", fragment="preview_result", preview=result, spec=spec, days=days,
                  preview_errors=[], fired=[t for t in result["would_have"] if t["to_state"] == "firing"],
                  notified_fired=[t for t in result["notified"] if t["to_state"] == "firing"])  # fmt: skip


@post("/ui/rules/draft", include_in_schema=False)
async def save_draft(request: Request[Any, Any, Any]) -> Response[str]:
    """Keep the rule as a draft change set (only a valid one) and go to its review: impact, then apply."""
    form = await form_of(request)
    services, p = caller(request)
    tenancy.staff_only(p)
    tenancy.require(p, "admin")
    existing = form.get("existing") == "1"
    rule = rule_from_form(form)
    document = (await anyio.to_thread.run_sync(services.catalog.view)).document
    at, rest = await anyio.to_thread.run_sync(check_rule, document, rule, existing)
    if at or rest:
        return await editor(request, form, existing)
    reason = form.get("reason", "").strip() or f"{'edit' if existing else 'add'} rule {rule['id']}"
    draft_id = await new_draft(request, reason, [{"op": "upsert", "kind": "rule", "value": rule}])
    return redirect(request, f"/ui/changes/{draft_id}")


ROUTES = [edit_rule, check, preview, save_draft]
