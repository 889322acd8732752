"""What the page modules share: calling the API's handlers as the signed-in caller, forms, charts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request
from litestar.exceptions import HTTPException

from wenu_stream.web.auth import Principal
from wenu_stream.web.context import ApiServices, principal_of, services_of


async def call(handler: Any, request: Request[Any, Any, Any], **kwargs: Any) -> Any:
    """Run an API route handler for this request's caller (same roles, tenancy and validation as over HTTP)."""
    return await handler.fn(request, **kwargs)


def caller(request: Request[Any, Any, Any]) -> tuple[ApiServices, Principal]:
    return services_of(request), principal_of(request)


async def form_of(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The submitted form, one value per field (the last one), without the CSRF token."""
    form = await request.form()
    return {k: str(v) for k, v in form.items() if k != "_csrf_token"}


async def form_lists(request: Request[Any, Any, Any], name: str) -> list[str]:
    form = await request.form()
    return [str(v) for v in form.getall(name)] if name in form else []


def problem_text(exc: HTTPException) -> list[str]:
    """What an API refusal says, problem by problem."""
    problems = (exc.extra or {}).get("problems") if isinstance(exc.extra, dict) else None
    if problems:
        return [p if isinstance(p, str) else f"{p.get('path')}: {p.get('message')}" for p in problems]
    return [str(exc.detail)]


_LAST = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])?$")


def field_of(path: str) -> str | None:
    """The form field a problem's JSON path ends with (``$.operations[0].value.clear`` -> ``clear``)."""
    found = _LAST.search(path)
    return found.group(1) if found else None


def by_field(problems: Iterable[Any], fields: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Problems keyed by the form field they name, and the rest (shown above the form)."""
    known = set(fields)
    at: dict[str, list[str]] = {}
    rest: list[str] = []
    for p in problems:
        if hasattr(p, "path"):
            path, message = p.path, p.message
        else:
            path, _, message = str(p).partition(": ")
        name = field_of(path)
        if name == "match" or name is None or name not in known:
            rest.append(f"{path}: {message}")
        else:
            at.setdefault(name, []).append(message)
    return at, rest


def local_input_to_iso(text: str, timezone: str) -> str | None:
    """A ``datetime-local`` input (wall time in the site's zone) as ISO 8601 with that zone's offset."""
    if not text:
        return None
    moment = dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(timezone))
    return moment.isoformat()


def iso_ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def chart_spec(
    rows: list[dict[str, Any]],
    kind: str,
    unit: str,
    timezone: str,
    *,
    markers: list[dict[str, Any]] = (),  # type: ignore[assignment]
    levels: list[dict[str, Any]] = (),  # type: ignore[assignment]
    span: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """uPlot data for stats windows: mean/min/max of a gauge, consumption of a counter (bars); ``span`` (ISO
    from and to) fixes the time axis to the range asked for, however few windows there are."""
    x = [iso_ms(r["start"]) / 1000 for r in rows]
    if kind == "counter":
        series = [{"label": f"consumption ({unit})", "values": [r.get("consumption") for r in rows]}]
    else:
        series = [
            {"label": "mean", "values": [r.get("mean") for r in rows]},
            {"label": "min", "values": [r.get("min") for r in rows]},
            {"label": "max", "values": [r.get("max") for r in rows]},
        ]
    return {"x": x, "series": series, "unit": unit, "timezone": timezone, "bars": kind == "counter",
            "markers": list(markers), "levels": list(levels),
            "range": [iso_ms(span[0]) / 1000, iso_ms(span[1]) / 1000] if span else None}  # fmt: skip


def marker(at_iso: str, to_state: str, kind: str) -> dict[str, Any]:
    return {"t": iso_ms(at_iso) / 1000, "to_state": to_state, "kind": kind}
