"""The catalog JSON document (``docs/catalog.md``): typed Structs and a validation that lists every problem.

msgspec stops at the first error, which is right for the wire and wrong for an
operator fixing a catalog file. :func:`validate` therefore walks the decoded
JSON itself, field by field, and collects every problem with its JSON path
(``$.companies[0].sites[1].timezone: unknown time zone 'Mars/Base'``). Only a
document without problems is converted to :class:`CatalogDocument`.

Alarm rules are parsed one by one with :func:`wenu_stream.alarms.rules.parse_rules`
(one structural problem per rule, as msgspec reports it), then checked with
``rule_problems``. A ``match`` rule that selects no series is a *warning*, not
an error: a company-wide rule may be written before the company's first
meter is installed, and the warning still shows a typo to the operator.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any, Literal

import msgspec

from wenu_stream.alarms.rules import AlarmRule, matches, parse_rules, rule_problems
from wenu_stream.errors import WenuError

Kind = Literal["gauge", "counter"]
ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
RULE_TYPES = ("threshold", "no_data", "rate_of_change", "stuck", "consumption")


class Channel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A device channel mapped onto a business series."""

    ch: str
    series: str
    kind: Kind
    unit: str = ""
    scale: float = 1.0
    offset: float = 0.0


class Device(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A meter installed at a site."""

    id: str
    channels: list[Channel] = []


class Site(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A client building; its time zone defines its days and months."""

    id: str
    name: str = ""
    timezone: str
    devices: list[Device] = []


class Company(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A client company."""

    id: str
    name: str = ""
    sites: list[Site] = []


class CatalogDocument(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The whole catalog, as operators write it."""

    companies: list[Company] = []
    alarm_rules: list[AlarmRule] = []


class Problem(msgspec.Struct, frozen=True):
    """One thing wrong with a document, at a JSON path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class Validated(msgspec.Struct, frozen=True):
    """The outcome of :func:`validate`: a document only when there are no problems."""

    document: CatalogDocument | None
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()


class InvalidCatalog(WenuError):
    """A catalog document was refused; ``problems`` lists every reason."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        self.problems = problems
        super().__init__(
            f"invalid catalog document ({len(problems)} problems): " + "; ".join(map(str, problems))
        )


Check = Callable[[Any], "str | None"]  # returns what is wrong with a value, or None


def _type_name(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def check_id(value: object) -> str | None:
    """Say what is wrong with an id (1..128 of ``[A-Za-z0-9_.:-]``), or None."""
    if not isinstance(value, str):
        return f"expected a string id, got {_type_name(value)}"
    if not ID_PATTERN.fullmatch(value):
        return f"invalid id {value!r}: use 1..128 characters of A-Z a-z 0-9 _ . : -"
    return None


def _check_text(value: object) -> str | None:
    return None if isinstance(value, str) else f"expected a string, got {_type_name(value)}"


def _check_number(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {_type_name(value)}"
    return None if math.isfinite(value) else "must be a finite number"


def _check_kind(value: object) -> str | None:
    return None if value in ("gauge", "counter") else f"invalid kind {value!r}: use 'gauge' or 'counter'"


def check_timezone(value: object) -> str | None:
    """Say what is wrong with an IANA time zone name, or None."""
    if not isinstance(value, str):
        return f"expected a time zone name, got {_type_name(value)}"
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {value!r}: use an IANA name such as 'America/Santiago'"
    return None


def _check_array(value: object) -> str | None:
    return None if isinstance(value, list) else f"expected an array, got {_type_name(value)}"


# field -> (check, required)
_DOCUMENT: dict[str, tuple[Check, bool]] = {
    "companies": (_check_array, True),
    "alarm_rules": (_check_array, False),
}
_COMPANY = {"id": (check_id, True), "name": (_check_text, False), "sites": (_check_array, False)}
_SITE = {
    "id": (check_id, True),
    "name": (_check_text, False),
    "timezone": (check_timezone, True),
    "devices": (_check_array, False),
}
_DEVICE = {"id": (check_id, True), "channels": (_check_array, False)}
_CHANNEL = {
    "ch": (check_id, True),
    "series": (check_id, True),
    "kind": (_check_kind, True),
    "unit": (_check_text, False),
    "scale": (_check_number, False),
    "offset": (_check_number, False),
}


class _Walk:
    """Collects problems while walking the decoded JSON; remembers where each id was first seen."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.seen: dict[tuple[str, str], str] = {}  # (what, scope + id) -> path of its first occurrence
        self.series_kind: dict[str, str] = {}
        self.broken: set[str] = set()
        self.series: list[_SeriesAttrs] = []

    def fields(self, raw: object, path: str, spec: Mapping[str, tuple[Check, bool]]) -> dict[str, Any] | None:
        """Check an object's fields; return it when it is an object (even with bad fields)."""
        if not isinstance(raw, dict):
            self.problems.append(Problem(path, f"expected an object, got {_type_name(raw)}"))
            return None
        for key in raw:
            if key not in spec:
                self.problems.append(
                    Problem(f"{path}.{key}", f"unknown field; known fields: {', '.join(spec)}")
                )
        for name, (check, required) in spec.items():
            if name not in raw:
                if required:
                    self.problems.append(Problem(f"{path}.{name}", "missing required field"))
            elif (problem := check(raw[name])) is not None:
                self.problems.append(Problem(f"{path}.{name}", problem))
        return raw

    def unique(self, what: str, value: object, path: str, scope: str = "") -> None:
        """Report ``value`` when an earlier ``what`` (within ``scope``) already used it."""
        if not isinstance(value, str):
            return
        first = self.seen.setdefault((what, scope + "\0" + value), path)
        if first != path:
            self.problems.append(
                Problem(path, f"duplicate {what} {value!r}{scope and ' of ' + scope} (first at {first})")
            )


class _SeriesAttrs(msgspec.Struct, frozen=True):
    """What a ``match`` reads of a series while the document is validated."""

    series: str
    company: str
    site: str
    unit: str
    kind: str


def _items(obj: dict[str, Any] | None, key: str) -> list[tuple[int, Any]]:
    value = obj.get(key) if obj is not None else None
    return list(enumerate(value)) if isinstance(value, list) else []


def _walk_companies(w: _Walk, doc: dict[str, Any]) -> None:
    for i, raw_company in _items(doc, "companies"):
        cpath = f"$.companies[{i}]"
        company = w.fields(raw_company, cpath, _COMPANY)
        w.unique("company id", company and company.get("id"), f"{cpath}.id")
        for j, raw_site in _items(company, "sites"):
            spath = f"{cpath}.sites[{j}]"
            site = w.fields(raw_site, spath, _SITE)
            w.unique("site id", site and site.get("id"), f"{spath}.id")
            for k, raw_device in _items(site, "devices"):
                dpath = f"{spath}.devices[{k}]"
                device = w.fields(raw_device, dpath, _DEVICE)
                w.unique("device id", device and device.get("id"), f"{dpath}.id")
                for n, raw_channel in _items(device, "channels"):
                    _walk_channel(w, raw_channel, f"{dpath}.channels[{n}]", company, site, device)


def _walk_channel(w: _Walk, raw: object, path: str, company: Any, site: Any, device: Any) -> None:
    channel = w.fields(raw, path, _CHANNEL)
    if channel is None:
        return
    w.unique("channel", channel.get("ch"), f"{path}.ch", scope=f"device {device.get('id')!r}")
    w.unique("series", channel.get("series"), f"{path}.series")
    series, kind = channel.get("series"), channel.get("kind")
    if isinstance(series, str) and _check_kind(kind) is not None:
        w.broken.add(series)  # already reported; rules on it are not checked against its kind
    elif isinstance(series, str) and isinstance(kind, str):
        w.series_kind.setdefault(series, kind)
        w.series.append(
            _SeriesAttrs(
                series, str(company.get("id")), str(site.get("id")), str(channel.get("unit", "")), kind
            )
        )


def _walk_rules(w: _Walk, doc: dict[str, Any]) -> list[AlarmRule]:
    rules: list[AlarmRule] = []
    for i, raw in _items(doc, "alarm_rules"):
        path = f"$.alarm_rules[{i}]"
        if isinstance(raw, dict):
            w.unique("rule id", raw.get("id"), f"{path}.id")
        try:
            rule = parse_rules([raw])[0]
        except msgspec.ValidationError as exc:
            message, _, where = str(exc).partition(" - at `")
            where = path + where.rstrip("`").removeprefix("$[0]")
            if where == f"{path}.type":
                message = f"{message.lower()}: use one of {', '.join(RULE_TYPES)}"
            w.problems.append(Problem(where, message))
            continue
        for problem in rule_problems(rule, w.series_kind.get(rule.series or "")):
            field, _, message = problem.partition(": ")
            if field == "series" and rule.series in w.broken:
                continue
            w.problems.append(Problem(f"{path}.{field}", message))
        if rule.match is not None and not any(matches(rule, s) for s in w.series):
            w.warnings.append(Problem(f"{path}.match", "selects no series of the catalog (check its values)"))
        rules.append(rule)
    return rules


def validate(raw: object) -> Validated:
    """Check a decoded catalog document against every rule of ``docs/catalog.md``.

    Args:
        raw: the document as decoded from JSON (dicts, lists, scalars).

    Returns:
        The typed document and warnings when it is valid; otherwise no
        document and every problem, in document order.
    """
    w = _Walk()
    doc = w.fields(raw, "$", _DOCUMENT)
    if doc is None:
        return Validated(None, tuple(w.problems))
    _walk_companies(w, doc)
    rules = _walk_rules(w, doc)
    if w.problems:
        return Validated(None, tuple(w.problems), tuple(w.warnings))
    companies = msgspec.convert(doc["companies"], list[Company])  # cannot fail: every field was checked
    return Validated(CatalogDocument(companies, rules), (), tuple(w.warnings))


def decode(data: bytes | str) -> Validated:
    """Decode JSON text and :func:`validate` it; malformed JSON is one problem at ``$``."""
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        return Validated(None, (Problem("$", f"not valid JSON: {exc}"),))
    return validate(raw)


def encode(document: CatalogDocument) -> bytes:
    """Encode a document as indented JSON (the ``catalog export`` format)."""
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"
