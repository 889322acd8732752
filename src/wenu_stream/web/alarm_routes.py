"""Alarm lifecycle routes: acknowledge and shelve an instance (operator), and preview a rule over stored stats.

Ack and shelf are kept on the instance's state item (the notifier reads the
shelf before it publishes; see ``sinks.notifier``) and every one is written to
the audit log. An ack belongs to the firing episode it was given in (its
``transition_id``): the next firing is unacknowledged again.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Request, delete, post, put
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.params import FromPath, JSONBody

from wenu_stream.alarms.engine import Transition
from wenu_stream.alarms.preview import SeriesFacts, preview, preview_readings
from wenu_stream.alarms.rules import AlarmRule, matches, parse_rules, rule_problems
from wenu_stream.alarms.shelving import Shelf, shelf_problems
from wenu_stream.aws import readers
from wenu_stream.catalog.workspace import audit
from wenu_stream.web import tenancy
from wenu_stream.web.context import principal_of, services_of, threaded
from wenu_stream.web.params import iso, parse_time
from wenu_stream.web.read_routes import instance_row, transition_row

MAX_PREVIEW_MS = 31 * 86_400_000


class AckBody(msgspec.Struct, kw_only=True):
    comment: str = ""


class ShelfBody(msgspec.Struct, kw_only=True):
    """Shelve until a time (ISO with an offset), or during quiet hours (``HH:MM`` in the site's zone), or both."""

    until: str | None = None
    quiet_start: str | None = None
    quiet_end: str | None = None
    comment: str = ""


class PreviewBody(msgspec.Struct, kw_only=True):
    """A draft rule (as in the catalog document) and the series and range to run it over."""

    rule: dict[str, Any]
    series: str | None = None  # default: the rule's own series
    start: str | None = msgspec.field(default=None, name="from")  # default: 7 days before ``to``
    end: str | None = msgspec.field(default=None, name="to")  # default: now
    source: Literal["stats", "warehouse"] = "stats"  # warehouse: the exact readings (PostgreSQL warehouse)


def _operator(
    request: Request[Any, Any, Any], rule: str, series: str
) -> tuple[Any, Any, Any, dict[str, Any]]:
    services, p = services_of(request), principal_of(request)
    info = tenancy.series(p, services.catalog.view(), series)
    tenancy.require(p, "operator")
    item = readers.get_instance(services.dynamodb, services.config.alarms.state_table, rule, series)
    if item is None:
        raise NotFoundException(f"no alarm instance of rule {rule!r} on series {series!r}")
    return services, p, info, item


@post("/api/v1/alarms/{rule:str}/{series:str}/ack", tags=["alarms"], status_code=200)
@threaded
def acknowledge(
    request: Request[Any, Any, Any], rule: FromPath[str], series: FromPath[str], data: JSONBody[AckBody]
) -> dict[str, Any]:
    """Acknowledge the firing episode of an instance, with a comment (409 when it is not firing)."""
    services, p, info, item = _operator(request, rule, series)
    last = item.get("last_transition", {}).get("M")
    if item["state"]["S"] != "firing" or last is None:
        raise HTTPException(
            status_code=409, detail=f"the instance is {item['state']['S']}: nothing to acknowledge"
        )
    ack = {
        "by": p.subject,
        "at": services.now_ms(),
        "comment": data.comment,
        "transition_id": last["transition_id"]["S"],
    }
    table = services.config.alarms.state_table
    if not readers.set_instance_attribute(
        services.dynamodb, table, rule, series, "ack", {"S": msgspec.json.encode(ack).decode()}
    ):
        raise NotFoundException(f"no alarm instance of rule {rule!r} on series {series!r}")
    services.catalog.run(
        lambda s: audit(
            s,
            actor=p.subject,
            action="alarm.ack",
            target=f"alarm:{rule}/{series}",
            company=info.company,
            detail=ack,
        )
    )
    return instance_row(readers.get_instance(services.dynamodb, table, rule, series) or item, info.timezone)


@put("/api/v1/alarms/{rule:str}/{series:str}/shelf", tags=["alarms"])
@threaded
def shelve(
    request: Request[Any, Any, Any], rule: FromPath[str], series: FromPath[str], data: JSONBody[ShelfBody]
) -> dict[str, Any]:
    """Hold back the instance's notifications until a time or during quiet hours; held-back transitions are
    recorded as ``shelved`` in the history."""
    services, p, info, item = _operator(request, rule, series)
    shelf = Shelf(
        since=services.now_ms(),
        until=parse_time("until", data.until, services.now_ms()),
        quiet_start=data.quiet_start,
        quiet_end=data.quiet_end,
        timezone=info.timezone,
        by=p.subject,
        comment=data.comment,
    )
    problems = shelf_problems(shelf)
    if problems:
        raise HTTPException(status_code=422, detail="invalid shelf", extra={"problems": problems})
    table = services.config.alarms.state_table
    if not readers.set_instance_attribute(
        services.dynamodb, table, rule, series, "shelf", {"S": msgspec.json.encode(shelf).decode()}
    ):
        raise NotFoundException(f"no alarm instance of rule {rule!r} on series {series!r}")
    services.catalog.run(
        lambda s: audit(
            s,
            actor=p.subject,
            action="alarm.shelve",
            target=f"alarm:{rule}/{series}",
            company=info.company,
            detail=msgspec.to_builtins(shelf),
        )
    )
    return instance_row(readers.get_instance(services.dynamodb, table, rule, series) or item, info.timezone)


@delete("/api/v1/alarms/{rule:str}/{series:str}/shelf", tags=["alarms"], status_code=204)
@threaded
def unshelve(request: Request[Any, Any, Any], rule: FromPath[str], series: FromPath[str]) -> None:
    """Publish the instance's notifications again from now on."""
    services, p, info, _ = _operator(request, rule, series)
    readers.set_instance_attribute(
        services.dynamodb, services.config.alarms.state_table, rule, series, "shelf", None
    )
    services.catalog.run(
        lambda s: audit(
            s, actor=p.subject, action="alarm.unshelve", target=f"alarm:{rule}/{series}", company=info.company
        )
    )


def _transition_view(tr: Transition, timezone: str) -> dict[str, Any]:
    return {
        "at": iso(tr.at, timezone),
        "rule": tr.rule,
        "series": tr.series,
        "from_state": tr.from_state,
        "to_state": tr.to_state,
        "value": tr.value,
        "transition_id": tr.transition_id,
    }


@post("/api/v1/rules/preview", tags=["alarms"], status_code=200)
@threaded
def preview_rule(request: Request[Any, Any, Any], data: JSONBody[PreviewBody]) -> dict[str, Any]:
    """Run a draft rule with the live engine over the series' stored 15-minute windows (``source=stats``), or
    its exact readings in the warehouse (``source=warehouse``); return what it would have notified next to what
    was notified (by the rule of the same id)."""
    services, p = services_of(request), principal_of(request)
    view = services.catalog.view()
    try:
        rule: AlarmRule = parse_rules([data.rule])[0]
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        path = "$.rule" + where.rstrip("`").removeprefix("$[0]")
        raise HTTPException(
            status_code=422, detail="invalid rule", extra={"problems": [f"{path}: {message}"]}
        ) from None
    series = data.series or rule.series
    if series is None:
        raise ValidationException("series: a match rule needs the series to preview on")
    info = tenancy.series(p, view, series)
    problems = [f"$.rule.{x}" for x in rule_problems(rule, info.kind) if not x.startswith("series:")]
    if not matches(rule, info):
        problems.append(f"$.rule: does not watch series {series!r}")
    if problems:
        raise HTTPException(status_code=422, detail="invalid rule", extra={"problems": problems})
    end = parse_time("to", data.end, services.now_ms()) or services.now_ms()
    start = parse_time("from", data.start, services.now_ms()) or end - 7 * 86_400_000
    if not 0 < end - start <= MAX_PREVIEW_MS:
        raise ValidationException("from/to: give a range of at most 31 days, from before to")
    until = min(end, services.now_ms())
    if data.source == "warehouse":
        wh = services.config.warehouse
        if wh.target != "postgres" or not wh.dsn:
            raise ValidationException(
                "source: the warehouse preview reads the PostgreSQL warehouse "
                "(WENU_WAREHOUSE_DSN); use source=stats"
            )
        result = preview_readings(
            rule, readers.warehouse_readings(wh.dsn, wh.schema, series, start, end), until
        )
    else:
        items, _ = readers.query_windows(
            services.dynamodb,
            services.config.stats.table,
            series,
            "15m",
            start,
            end,
            services.now_ms() // 1000,
        )
        facts = SeriesFacts(
            series=series,
            company=info.company,
            site=info.site,
            timezone=info.timezone,
            kind=info.kind,
            unit=info.unit,
        )
        result = preview(rule, facts, [readers.window_row(i, times=True) for i in items], until)
    notified, _ = readers.query_transitions(
        services.dynamodb, services.config.alarms.transitions_table, series, start_ms=start, end_ms=end
    )
    return {
        "rule": rule.id, "series": series, "timezone": info.timezone, "from": iso(start, info.timezone),
        "to": iso(end, info.timezone), "source": data.source, "windows": result.windows,
        "readings": result.readings, "exact": result.exact,
        "would_have": [_transition_view(t, info.timezone) for t in result.transitions],
        "notified": [transition_row(i, info.timezone) for i in notified if i["rule"]["S"] == rule.id],
    }  # fmt: skip


ROUTES = [acknowledge, shelve, unshelve, preview_rule]
