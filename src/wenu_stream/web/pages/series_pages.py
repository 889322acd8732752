"""Sites and series: each site's series with their latest value and alarm state, and a series' chart
(15m/1h/1d/1mo windows: mean/min/max of a gauge, consumption of a counter) with its transitions overlaid."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from wenu_stream.alarms.rules import ThresholdRule, matches
from wenu_stream.web import read_routes, tenancy
from wenu_stream.web.pages.common import call, caller, chart_spec, marker
from wenu_stream.web.pages.render import render
from wenu_stream.web.params import iso

SPANS_MS = {"15m": 2 * 86_400_000, "1h": 7 * 86_400_000, "1d": 90 * 86_400_000, "1mo": 730 * 86_400_000}
STATE_RANK = {"firing": 0, "pending": 1, "ok": 2}


@get(["/ui/", "/ui/sites"], include_in_schema=False)
async def sites(request: Request[Any, Any, Any]) -> Response[str]:
    services, p = caller(request)
    view = services.catalog.view()
    alarms = (await call(read_routes.list_alarms, request, alarm_state="firing", company=None, site=None,
                         severity=None, limit=500, cursor=None)).items  # fmt: skip
    firing: dict[str, int] = {}
    for a in alarms:
        firing[a["site"]] = firing.get(a["site"], 0) + 1
    series_count: dict[str, int] = {}
    for info in view.snapshot.series.values():
        series_count[info.site] = series_count.get(info.site, 0) + 1
    companies: list[dict[str, Any]] = [
        {"id": c, "name": name, "sites": sorted((s for s in view.sites.values() if s.company == c), key=lambda s: s.id)}
        for c, name in sorted(view.companies.items())
        if tenancy.visible(p, c)
    ]  # fmt: skip
    return render(request, "sites.html", companies=companies, firing=firing, series_count=series_count,
                  version=view.version)  # fmt: skip


@get("/ui/sites/{site_id:str}", include_in_schema=False)
async def site_overview(request: Request[Any, Any, Any], site_id: FromPath[str]) -> Response[str]:
    """Each series of the site: latest value (its time in the site's zone) and the worst state of its alarms."""
    services, p = caller(request)
    site = tenancy.site(p, services.catalog.view(), site_id)
    page = await call(
        read_routes.company_series, request, company=site.company, site=site.id, limit=500, cursor=None
    )
    alarms = (await call(read_routes.list_alarms, request, alarm_state=None, company=None, site=site.id,
                         severity=None, limit=500, cursor=None)).items  # fmt: skip
    worst: dict[str, dict[str, Any]] = {}
    for a in alarms:
        held = worst.get(a["series"])
        if held is None or STATE_RANK.get(a["state"], 3) < STATE_RANK.get(held["state"], 3):
            worst[a["series"]] = a
    return render(request, "site.html", site=site, rows=page.items, worst=worst, fragment="rows")


async def _all_windows(
    request: Request[Any, Any, Any], series: str, window: str, start: str, end: str
) -> Any:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await call(read_routes.series_stats, request, series=series, window=window, start=start, end=end,
                          limit=500, cursor=cursor)  # fmt: skip
        rows.extend(page.items)
        cursor = page.next
        if not cursor or len(rows) >= 5000:
            return page, rows


async def _transitions(
    request: Request[Any, Any, Any], series: str, start: str, end: str
) -> list[dict[str, Any]]:
    page = await call(read_routes.series_transitions, request, series=series, start=start, end=end, rule=None,
                      limit=500, cursor=None)  # fmt: skip
    return list(page.items)


@get("/ui/series/{series_id:str}", include_in_schema=False)
async def series_page(request: Request[Any, Any, Any], series_id: FromPath[str]) -> Response[str]:
    services, p = caller(request)
    view = services.catalog.view()
    info = tenancy.series(p, view, series_id)
    window = request.query_params.get("window", "1h")
    if window not in SPANS_MS:
        raise NotFoundException(f"no window {window!r}: use one of {', '.join(SPANS_MS)}")
    now = services.now_ms()
    start, end = iso(now - SPANS_MS[window], info.timezone), iso(now + 1, info.timezone)
    assert start is not None and end is not None
    stats, rows = await _all_windows(request, series_id, window, start, end)
    transitions = await _transitions(request, series_id, start, end)
    rules = [r for r in view.snapshot.rules if _watches(r, info)]
    levels = [
        {"value": r.value, "label": f"{r.id} {r.op} {r.value:g}"}
        for r in rules
        if isinstance(r, ThresholdRule)
    ]
    spec = chart_spec(rows, info.kind, info.unit, info.timezone, levels=levels,
                      markers=[marker(t["at"], t["to_state"], "notified") for t in transitions], span=(start, end))  # fmt: skip
    return render(request, "series.html", info=info, window=window, windows=list(SPANS_MS), spec=spec,
                  rows=rows, transitions=list(reversed(transitions)), rules=rules, stats=stats)  # fmt: skip


def _watches(rule: Any, info: Any) -> bool:
    return matches(rule, info)


ROUTES = [sites, site_overview, series_page]
