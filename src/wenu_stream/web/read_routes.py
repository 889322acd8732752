"""Read routes: stats windows, series with their latest values, alarm instances and transitions, and the
operations views (dead letters, quarantine, checkpoints and lag, the audit log).

Every handler asks ``web.tenancy`` first. Stats and transitions are one
DynamoDB Query per page (the same readers as the CLI, ``ops.readers``); times
are ISO 8601 with the offset of the series' site, whose zone is named.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, FromQuery, QueryParameter

from wenu_stream.aws import readers
from wenu_stream.aws.dead_letters import letter_prefix
from wenu_stream.catalog.workspace import audit_entries
from wenu_stream.errors import ConfigError
from wenu_stream.ops import checkpoints as ops_checkpoints
from wenu_stream.records.rejections import Reason
from wenu_stream.timewindows import WIDTHS
from wenu_stream.web import tenancy
from wenu_stream.web.auth import Principal
from wenu_stream.web.context import ApiServices, principal_of, services_of, threaded
from wenu_stream.web.params import Page, iso, limit_of, offset_page, parse_time

Width = Literal["15m", "1h", "1d", "1mo"]
App = Literal["processing", "alarms"]
From = Annotated[str | None, QueryParameter(name="from", description="ISO 8601 with an offset")]
To = Annotated[str | None, QueryParameter(name="to", description="ISO 8601 with an offset (exclusive)")]
assert set(WIDTHS) == {"15m", "1h", "1d", "1mo"}


class StatsPage(msgspec.Struct, kw_only=True):
    series: str
    window: str
    kind: str
    unit: str
    timezone: str  # the site's zone: 1d and 1mo windows are its days and months
    items: list[dict[str, Any]]
    next: str | None = None


class SeriesLatest(msgspec.Struct, kw_only=True):
    series: str
    company: str
    site: str
    timezone: str
    kind: str
    unit: str
    latest_value: float | None
    latest_at: str | None  # time of the newest reading of the newest 15m window, in the site's zone
    window_start: str | None
    alarm_state: str  # the worst state of the series' alarm instances: firing, pending or ok
    firing: list[str]  # the rules firing on it


def _caller(request: Request[Any, Any, Any]) -> tuple[ApiServices, Principal]:
    return services_of(request), principal_of(request)


@get("/api/v1/series/{series:str}/stats", tags=["stats"])
@threaded
def series_stats(
    request: Request[Any, Any, Any],
    series: FromPath[str],
    window: FromQuery[Width],
    start: From,
    end: To,
    limit: FromQuery[int] = 200,
    cursor: FromQuery[str | None] = None,
) -> StatsPage:
    """Windows of one series whose start is in ``[from, to)`` (default: the last day), one DynamoDB Query."""
    services, p = _caller(request)
    info = tenancy.series(p, services.catalog.view(), series)
    now = services.now_ms()
    end_ms = parse_time("to", end, services.now_ms()) or now + 1
    start_ms = parse_time("from", start, services.now_ms()) or end_ms - 86_400_000
    if end_ms <= start_ms:
        raise ValidationException("to: must be after from")
    try:
        items, nxt = readers.query_windows(
            services.dynamodb,
            services.config.stats.table,
            series,
            window,
            start_ms,
            end_ms,
            now // 1000,
            limit=limit_of(limit),
            cursor=cursor,
        )
    except ValueError as exc:
        raise ValidationException(f"cursor: {exc}") from None
    return StatsPage(
        series=series,
        window=window,
        kind=info.kind,
        unit=info.unit,
        timezone=info.timezone,
        items=[readers.window_row(i, times=True) for i in items],
        next=nxt,
    )


@get("/api/v1/companies/{company:str}/series", tags=["stats"])
@threaded
def company_series(
    request: Request[Any, Any, Any],
    company: FromPath[str],
    site: FromQuery[str | None] = None,
    limit: FromQuery[int] = 100,
    cursor: FromQuery[str | None] = None,
) -> Page:
    """The series of a company (or of one of its sites) with their latest values and alarm state."""
    services, p = _caller(request)
    view = services.catalog.view()
    tenancy.company(p, view, company)
    if site is not None and tenancy.site(p, view, site).company != company:
        raise NotFoundException(f"no site {site!r} in company {company!r}")
    chosen = sorted(
        (
            s
            for s in view.snapshot.series.values()
            if s.company == company and (site is None or s.site == site)
        ),
        key=lambda s: s.series,
    )
    page = offset_page(chosen, cursor, limit)
    latest = readers.latest_windows(
        services.dynamodb,
        services.config.stats.table,
        [s.series for s in page.items],
        "15m",
        services.now_ms() // 1000,
    )
    states: dict[
        str, dict[str, list[str]]
    ] = {}  # series -> state -> rules (one Scan of the company's instances)
    for i in readers.scan_instances(
        services.dynamodb, services.config.alarms.state_table, company=company, site=site
    ):
        states.setdefault(i["series"]["S"], {}).setdefault(i["state"]["S"], []).append(i["rule"]["S"])
    page.items = [_latest(info, latest.get(info.series), states.get(info.series, {})) for info in page.items]
    return page


def _latest(info: Any, item: dict[str, Any] | None, states: dict[str, list[str]]) -> SeriesLatest:
    row = readers.window_row(item, times=True) if item is not None else {}
    worst = "firing" if "firing" in states else "pending" if "pending" in states else "ok"
    return SeriesLatest(
        series=info.series,
        company=info.company,
        site=info.site,
        timezone=info.timezone,
        kind=info.kind,
        unit=info.unit,
        latest_value=row.get("last"),
        latest_at=row.get("last_at"),
        window_start=row.get("start"),
        alarm_state=worst,
        firing=sorted(states.get("firing", [])),
    )


def instance_row(item: dict[str, Any], timezone: str) -> dict[str, Any]:
    """An alarm instance as the API shows it, times in the site's zone."""
    last = item.get("last_transition", {}).get("M")
    ack = msgspec.json.decode(item["ack"]["S"]) if "ack" in item else None
    shelf = msgspec.json.decode(item["shelf"]["S"]) if "shelf" in item else None
    last_id = last["transition_id"]["S"] if last else None
    return {
        "rule": item["rule"]["S"], "series": item["series"]["S"], "company": item["company"]["S"],
        "site": item["site"]["S"], "timezone": timezone, "state": item["state"]["S"],
        "severity": item.get("severity", {}).get("S", ""), "rule_type": item.get("rule_type", {}).get("S", ""),
        "last_reading": iso(int(item["last_t"]["N"]) if "last_t" in item else None, timezone),
        "last_value": float(item["last_value"]["N"]) if "last_value" in item else None,
        "last_transition": None if last is None else {
            "transition_id": last_id, "to_state": last["to_state"]["S"], "at": iso(int(last["at"]["N"]), timezone)},
        "acknowledged": bool(ack and ack.get("transition_id") == last_id and item["state"]["S"] == "firing"),
        "ack": ack, "shelf": shelf, "version": int(item["version"]["N"]),
    }  # fmt: skip


@get("/api/v1/alarms", tags=["alarms"])
@threaded
def list_alarms(
    request: Request[Any, Any, Any],
    alarm_state: Annotated[Literal["firing", "pending", "ok"] | None, QueryParameter(name="state")] = None,
    company: FromQuery[str | None] = None,
    site: FromQuery[str | None] = None,
    severity: FromQuery[Literal["critical", "major", "minor", "warning"] | None] = None,
    limit: FromQuery[int] = 100,
    cursor: FromQuery[str | None] = None,
) -> Page:
    """Alarm instances, firing first, by company, site, severity and state."""
    services, p = _caller(request)
    view = services.catalog.view()
    scope = tenancy.company_filter(p, view, company)
    if site is not None:
        tenancy.site(p, view, site)
    items = readers.scan_instances(
        services.dynamodb,
        services.config.alarms.state_table,
        state=alarm_state,
        company=scope,
        site=site,
        severity=severity,
    )
    rows = [
        instance_row(i, _zone(view, i["site"]["S"])) for i in items if tenancy.visible(p, i["company"]["S"])
    ]
    order = {"firing": 0, "pending": 1, "ok": 2}
    rows.sort(key=lambda r: (order.get(r["state"], 3), r["company"], r["series"], r["rule"]))
    return offset_page(rows, cursor, limit)


def _zone(view: Any, site: str) -> str:
    info = view.sites.get(site)
    return info.timezone if info is not None else "UTC"


@get("/api/v1/alarms/{rule:str}/{series:str}", tags=["alarms"])
@threaded
def show_alarm(request: Request[Any, Any, Any], rule: FromPath[str], series: FromPath[str]) -> dict[str, Any]:
    """One alarm instance with its acknowledgement and shelf."""
    services, p = _caller(request)
    info = tenancy.series(p, services.catalog.view(), series)
    item = readers.get_instance(services.dynamodb, services.config.alarms.state_table, rule, series)
    if item is None:
        raise NotFoundException(f"no alarm instance of rule {rule!r} on series {series!r}")
    return instance_row(item, info.timezone)


def transition_row(item: dict[str, Any], timezone: str) -> dict[str, Any]:
    value = item.get("value", {})
    return {
        "at": iso(int(item["at"]["N"]), timezone), "timezone": timezone, "rule": item["rule"]["S"],
        "series": item["series"]["S"], "severity": item["severity"]["S"], "from_state": item["from_state"]["S"],
        "to_state": item["to_state"]["S"], "value": float(value["N"]) if "N" in value else None,
        "status": item["status"]["S"], "transition_id": item["transition_id"]["S"],
        "published_at": iso(int(item["published_at"]["N"])) if "published_at" in item else None,
        "shelved_by": item.get("shelved_by", {}).get("S"),
    }  # fmt: skip


@get("/api/v1/series/{series:str}/transitions", tags=["alarms"])
@threaded
def series_transitions(
    request: Request[Any, Any, Any],
    series: FromPath[str],
    start: From,
    end: To,
    rule: FromQuery[str | None] = None,
    limit: FromQuery[int] = 200,
    cursor: FromQuery[str | None] = None,
) -> Page:
    """A series' alarm transitions, oldest first, with their status (published, shelved or pending)."""
    services, p = _caller(request)
    info = tenancy.series(p, services.catalog.view(), series)
    try:
        items, nxt = readers.query_transitions(
            services.dynamodb,
            services.config.alarms.transitions_table,
            series,
            start_ms=parse_time("from", start, services.now_ms()),
            end_ms=parse_time("to", end, services.now_ms()),
            limit=limit_of(limit),
            cursor=cursor,
        )
    except ValueError as exc:
        raise ValidationException(f"cursor: {exc}") from None
    rows = [transition_row(i, info.timezone) for i in items if rule is None or i["rule"]["S"] == rule]
    return Page(items=rows, next=nxt)


@get("/api/v1/dead-letters", tags=["operations"])
@threaded
def list_dead_letters(
    request: Request[Any, Any, Any],
    app: FromQuery[App] = "processing",
    reason: FromQuery[str | None] = None,
    start: From = None,
    end: To = None,
    limit: FromQuery[int] = 50,
    cursor: FromQuery[str | None] = None,
) -> Page:
    """Dead letters of an application (of one reason, arrived in ``[from, to)``), without the record bytes."""
    services, p = _caller(request)
    tenancy.staff_only(p)
    if reason is not None and reason not in {r.value for r in Reason}:
        raise ValidationException(f"reason: use one of {', '.join(r.value for r in Reason)}")
    cfg = services.config
    prefix = letter_prefix(cfg.sinks.dead_letter_prefix, app, cfg.kinesis.stream, reason)
    try:
        items, nxt = readers.dead_letters(
            services.s3,
            cfg.sinks.bucket,
            prefix,
            since_ms=parse_time("from", start, services.now_ms()),
            until_ms=parse_time("to", end, services.now_ms()),
            limit=limit_of(limit),
            cursor=cursor,
        )
    except ValueError as exc:
        raise ValidationException(f"cursor: {exc}") from None
    return Page(items=items, next=nxt)


@get("/api/v1/quarantine", tags=["operations"])
@threaded
def quarantine(request: Request[Any, Any, Any]) -> Page:
    """Readings the catalog does not map, counted by device, channel and reason."""
    services, p = _caller(request)
    tenancy.staff_only(p)
    cfg = services.config
    prefix = f"quarantine/processing/{cfg.kinesis.stream}/"
    return Page(items=readers.quarantine_counts(services.s3, cfg.sinks.bucket, prefix))


@get("/api/v1/apps/{app:str}/checkpoints", tags=["operations"])
@threaded
def app_checkpoints(request: Request[Any, Any, Any], app: FromPath[str], lag: FromQuery[bool] = True) -> Page:
    """Per shard: owner, checkpoint, parents and lag behind the tip (``lag=false``: do not read the stream)."""
    services, p = _caller(request)
    tenancy.staff_only(p)
    if app not in ("processing", "alarms"):
        raise NotFoundException(f"no application {app!r}")
    cfg = services.config
    table = cfg.lease.table if cfg.lease.table and cfg.app == app else f"wenu-{app}"
    try:
        rows = ops_checkpoints.list_status(
            services.dynamodb, services.kinesis, table, cfg.kinesis.stream, now_ms=services.now_ms(), lag=lag
        )
    except ConfigError:
        raise NotFoundException(f"no lease table {table!r}: has the {app} application run?") from None
    return Page(items=[msgspec.to_builtins(r) for r in rows])


@get("/api/v1/audit", tags=["operations"])
@threaded
def audit_log(
    request: Request[Any, Any, Any],
    company: FromQuery[str | None] = None,
    target: FromQuery[str | None] = None,
    limit: FromQuery[int] = 100,
    cursor: FromQuery[int | None] = None,
) -> Page:
    """Who did what: change sets applied, acknowledgements, shelves; newest first (``cursor``: an ``at``)."""
    services, p = _caller(request)
    tenancy.staff_only(p)
    entries = services.catalog.run(
        lambda s: audit_entries(s, company=company, target=target, before=cursor, limit=limit_of(limit))
    )
    return Page(items=entries, next=str(entries[-1].at) if len(entries) == limit else None)


ROUTES = [
    series_stats,
    company_series,
    list_alarms,
    show_alarm,
    series_transitions,
    list_dead_letters,
    quarantine,
    app_checkpoints,
    audit_log,
]
