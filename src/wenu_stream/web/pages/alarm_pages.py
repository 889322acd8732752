"""The alarm console: firing and recent instances by company, site, severity and state (refreshed every few
seconds), acknowledge with a comment, shelve until a time in the site's zone, and the noisiest rules."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException

from wenu_stream.web import alarm_routes, read_routes
from wenu_stream.web.pages.common import call, caller, form_of, local_input_to_iso, problem_text
from wenu_stream.web.pages.render import render

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

FILTERS = ("company", "site", "severity", "state")
REFRESH_S = 5


async def _rows(request: Request[Any, Any, Any], filters: dict[str, str]) -> list[dict[str, Any]]:
    page = await call(
        read_routes.list_alarms,
        request,
        alarm_state=filters.get("state") or None,
        company=filters.get("company") or None,
        site=filters.get("site") or None,
        severity=filters.get("severity") or None,
        limit=500,
        cursor=None,
    )
    return list(page.items)


async def _console(request: Request[Any, Any, Any], filters: dict[str, str], message: str | None = None,
                   errors: list[str] | None = None) -> Response[str]:  # fmt: skip
    services, p = caller(request)
    view = services.catalog.view()
    rows = await _rows(request, filters)
    companies = [c for c in sorted(view.companies) if p.company in (None, c)]
    sites = sorted((s for s in view.sites.values() if p.company in (None, s.company)), key=lambda s: s.id)
    counts = Counter(r["state"] for r in rows)
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    return render(request, "alarms.html", fragment="rows", rows=rows, filters=filters, companies=companies,
                  sites=sites, counts=counts, query=query, refresh_s=REFRESH_S, message=message,
                  errors=errors or [], now_ms=services.now_ms())  # fmt: skip


@get("/ui/alarms", include_in_schema=False)
async def console(request: Request[Any, Any, Any]) -> Response[str]:
    filters = {k: request.query_params.get(k, "") for k in FILTERS}
    return await _console(request, filters)


async def _act(request: Request[Any, Any, Any], action: str) -> Response[str]:
    form = await form_of(request)
    rule, series = form.get("rule", ""), form.get("series", "")
    filters = {k: form.get(f"f_{k}", "") for k in FILTERS}
    services, _ = caller(request)
    info = services.catalog.view().snapshot.series.get(series)
    timezone = info.timezone if info is not None else "UTC"
    try:
        if action == "ack":
            await call(alarm_routes.acknowledge, request, rule=rule, series=series,
                       data=alarm_routes.AckBody(comment=form.get("comment", "")))  # fmt: skip
            message = f"Acknowledged {rule} on {series}."
        elif action == "shelve":
            until = local_input_to_iso(form.get("until", ""), timezone)
            body = alarm_routes.ShelfBody(until=until, quiet_start=form.get("quiet_start") or None,
                                          quiet_end=form.get("quiet_end") or None, comment=form.get("comment", ""))  # fmt: skip
            await call(alarm_routes.shelve, request, rule=rule, series=series, data=body)
            message = f"Shelved {rule} on {series}."
        else:
            await call(alarm_routes.unshelve, request, rule=rule, series=series)
            message = f"Unshelved {rule} on {series}."
    except (HTTPException, ValueError) as exc:
        errors = problem_text(exc) if isinstance(exc, HTTPException) else [f"until: {exc}"]
        return await _console(request, filters, errors=[f"{action} {rule} on {series}: {e}" for e in errors])
    return await _console(request, filters, message=message)


@post("/ui/alarms/ack", include_in_schema=False)
async def acknowledge(request: Request[Any, Any, Any]) -> Response[str]:
    return await _act(request, "ack")


@post("/ui/alarms/shelve", include_in_schema=False)
async def shelve(request: Request[Any, Any, Any]) -> Response[str]:
    return await _act(request, "shelve")


@post("/ui/alarms/unshelve", include_in_schema=False)
async def unshelve(request: Request[Any, Any, Any]) -> Response[str]:
    return await _act(request, "unshelve")


def count_noise(
    transitions: list[dict[str, Any]], zones: dict[str, str], days: list[str]
) -> list[dict[str, Any]]:
    """Transitions per rule per day (in each series' site zone), noisiest first."""
    per: dict[str, Counter[str]] = defaultdict(Counter)
    firings: Counter[str] = Counter()
    series_of: dict[str, set[str]] = defaultdict(set)
    for t in transitions:
        zone = ZoneInfo(zones.get(t["series"], "UTC"))
        day = dt.datetime.fromtimestamp(t["at"] / 1000, dt.UTC).astimezone(zone).date().isoformat()
        per[t["rule"]][day] += 1
        series_of[t["rule"]].add(t["series"])
        if t["to_state"] == "firing":
            firings[t["rule"]] += 1
    rows = [{"rule": rule, "per_day": [counts.get(d, 0) for d in days], "total": sum(counts.values()),
             "firings": firings[rule], "series": len(series_of[rule])} for rule, counts in per.items()]  # fmt: skip
    return sorted(rows, key=lambda r: (-r["total"], r["rule"]))


def _scan_transitions(ddb: DynamoDBClient, table: str, since_ms: int) -> list[dict[str, Any]]:
    pages = ddb.get_paginator("scan").paginate(
        TableName=table, FilterExpression="#at >= :since", ExpressionAttributeNames={"#at": "at", "#r": "rule"},
        ExpressionAttributeValues={":since": {"N": str(since_ms)}}, ProjectionExpression="#at, #r, series, to_state",
    )  # fmt: skip
    return [
        {
            "at": int(i["at"]["N"]),
            "rule": i["rule"]["S"],
            "series": i["series"]["S"],
            "to_state": i["to_state"]["S"],
        }
        for page in pages
        for i in page.get("Items", [])
    ]


@get("/ui/alarms/noisy", include_in_schema=False, sync_to_thread=True)
def noisiest(request: Request[Any, Any, Any]) -> Response[str]:
    """Transitions per rule per day over the last ``days`` (the "bad actors" of alarm management)."""
    services, p = caller(request)
    days_n = max(1, min(31, int(request.query_params.get("days", "7") or 7)))
    view = services.catalog.view()
    visible = {s: i for s, i in view.snapshot.series.items() if p.company in (None, i.company)}
    now = services.now_ms()
    found = _scan_transitions(
        services.dynamodb, services.config.alarms.transitions_table, now - days_n * 86_400_000
    )
    found = [t for t in found if t["series"] in visible]
    zone = ZoneInfo("UTC")
    days = [(dt.datetime.fromtimestamp(now / 1000, dt.UTC).astimezone(zone).date() - dt.timedelta(days=n)).isoformat()
            for n in reversed(range(days_n))]  # fmt: skip
    rows = count_noise(found, {s: i.timezone for s, i in visible.items()}, days)
    return render(request, "noisy.html", rows=rows, days=days, days_n=days_n)


ROUTES = [console, acknowledge, shelve, unshelve, noisiest]
