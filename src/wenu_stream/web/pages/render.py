"""Rendering the backoffice: one Jinja environment, times in a site's zone (named), and the page context.

Every page is rendered with the caller (``principal``: what a role may not do
is not offered), the CSRF token (forms and htmx requests carry it), and the
current catalog version. A request sent by htmx (``HX-Request``) gets only the
named block of the template (``fragment``), so the same template serves the
whole page and its auto-refreshing or swapped parts.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import msgspec
from litestar import MediaType, Request, Response
from litestar.utils.scope.state import ScopeState

from wenu_stream.web.auth import Principal

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def local_time(value: int | str | None, timezone: str = "UTC", *, seconds: bool = True) -> str:
    """A time (epoch ms or ISO 8601 with an offset) in ``timezone``, e.g. ``2026-12-04 14:03:05``."""
    if value is None or value == "":
        return ""
    moment = (
        dt.datetime.fromtimestamp(value / 1000, dt.UTC)
        if isinstance(value, int | float)
        else dt.datetime.fromisoformat(value)
    )
    return moment.astimezone(ZoneInfo(timezone)).strftime(
        "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    )


def zone_label(timezone: str, at_ms: int | None = None) -> str:
    """The zone named with its abbreviation at a moment, e.g. ``America/Santiago (-03)``."""
    moment = dt.datetime.fromtimestamp((at_ms or 0) / 1000, dt.UTC) if at_ms else dt.datetime.now(dt.UTC)
    abbrev = moment.astimezone(ZoneInfo(timezone)).strftime("%Z")
    return timezone if abbrev == timezone else f"{timezone} ({abbrev})"


def number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}".replace(",", " ")
    return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:,.{max(0, digits - 1)}f}".replace(",", " ")


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = local_time
    env.filters["number"] = number
    env.filters["json"] = lambda v: msgspec.json.encode(v).decode()
    env.globals["zone_label"] = zone_label
    return env


def csrf_token(request: Request[Any, Any, Any]) -> str:
    token = ScopeState.from_scope(request.scope).csrf_token
    return token if isinstance(token, str) else ""


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request[Any, Any, Any],
    template: str,
    *,
    fragment: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response[str]:
    """The page (or, for an htmx request and a ``fragment`` name, only that block of it)."""
    user = request.scope.get("user")
    context.setdefault("principal", user if isinstance(user, Principal) else None)
    context.setdefault("flash", None)
    context.update(request=request, csrf=csrf_token(request), path=request.url.path)
    tpl = environment().get_template(template)
    if fragment is not None and is_htmx(request):
        html = "".join(tpl.blocks[fragment](tpl.new_context(context)))
    else:
        html = tpl.render(context)
    return Response(html, media_type=MediaType.HTML, status_code=status_code, headers=headers or {})


def redirect(request: Request[Any, Any, Any], to: str) -> Response[str]:
    """Go to ``to``: a 303 for a plain request, ``HX-Redirect`` for an htmx one (a whole page load)."""
    if is_htmx(request):
        return Response("", status_code=200, headers={"HX-Redirect": to})
    return Response("", status_code=303, headers={"Location": to})
