"""Change sets: edits of the catalog, applied to a base document and validated whole (pure).

A change set names the catalog version it was written against, a reason, and
a list of operations. :func:`plan` applies the operations to the base document
in memory and validates the *result* with :func:`wenu_stream.catalog.document.validate`,
so one validator serves the CLI import, the API and the backoffice. Every
problem is reported at once:

- problems of an operation itself (an unknown id to update, a create of an id
  that exists, a CSV line with a missing column) at ``$.operations[i]...``;
- problems of the resulting document at the operation that wrote the field
  (``$.operations[2].value.timezone``, ``$.operations[4].csv[line 3].kind``)
  when one did, else at the document path, with the entity and the last
  operation that touched it.

Entities are flat while operations run: ``company`` ``{id, name}``, ``site``
``{id, company, name, timezone}``, ``device`` ``{id, site}``, ``channel``
``{device, ch, series, kind, unit, scale, offset}`` (id ``"<device>/<ch>"``)
and ``rule`` (the rule's own fields). Retiring a company, site or device
retires what it holds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any, Literal

import msgspec

from wenu_stream.catalog.document import CatalogDocument, Problem, validate

EntityKind = Literal["company", "site", "device", "channel", "rule"]
KINDS: tuple[EntityKind, ...] = ("company", "site", "device", "channel", "rule")
PARENT: dict[str, tuple[str, str]] = {
    "site": ("company", "company"),
    "device": ("site", "site"),
    "channel": ("device", "device"),
}  # kind -> (parent kind, field)
CSV_COLUMNS = ("device", "ch", "series", "kind", "unit", "scale", "offset")
Entities = dict[str, dict[str, dict[str, Any]]]  # kind -> id -> fields


class _Op(msgspec.Struct, frozen=True, tag_field="op", forbid_unknown_fields=True):
    """An operation of a change set, tagged by ``op``."""


class Create(_Op, frozen=True, tag="create"):
    """Add an entity that does not exist (a retired one may come back)."""

    kind: EntityKind
    value: dict[str, Any]


class Upsert(_Op, frozen=True, tag="upsert"):
    """Create an entity, or replace every field of the one with that id."""

    kind: EntityKind
    value: dict[str, Any]


class Update(_Op, frozen=True, tag="update"):
    """Set fields of one entity; a null removes an optional field (e.g. a rule's ``clear``)."""

    kind: EntityKind
    id: str
    set: dict[str, Any]


class Retire(_Op, frozen=True, tag="retire"):
    """Retire an entity and what it holds (a site's devices and their channels)."""

    kind: EntityKind
    id: str


class SetWhere(_Op, frozen=True, tag="set_where"):
    """Bulk edit: set fields on every entity of ``kind`` that ``where`` selects (it must select one or more).

    ``where`` compares fields of the entity and, for rules and channels, of the
    series they watch or carry: ``company``, ``site``, ``unit``, ``kind`` (a
    ``match`` rule by its match fields); ``ids`` selects by id.
    """

    kind: EntityKind
    where: dict[str, Any]
    set: dict[str, Any]


class DevicesCsv(_Op, frozen=True, tag="devices_csv"):
    """Upsert devices of ``site`` and their channels from CSV text with a header of ``CSV_COLUMNS``."""

    site: str
    csv: str


class Replace(_Op, frozen=True, tag="replace"):
    """Make the catalog equal to a whole document (``catalog import``, a restore)."""

    document: dict[str, Any]


Operation = Create | Upsert | Update | Retire | SetWhere | DevicesCsv | Replace


class ChangeSet(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Operations written against ``base_version``, with the reason kept in the version history."""

    base_version: int
    reason: str
    operations: list[Operation]


class ChangeProblem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One thing wrong with a change set, at a JSON path (of the change set, or else of the document)."""

    path: str
    message: str
    operation: int | None = None
    entity: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class Planned(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of :func:`plan`: the resulting document when there are no problems."""

    document: CatalogDocument | None
    raw: dict[str, Any]
    problems: tuple[ChangeProblem, ...] = ()
    warnings: tuple[ChangeProblem, ...] = ()

    @property
    def valid(self) -> bool:
        return self.document is not None


def decode_operations(raw: object) -> tuple[list[Operation], list[ChangeProblem]]:
    """Parse a change set's ``operations`` array one by one, collecting a problem per bad operation."""
    if not isinstance(raw, list):
        return [], [ChangeProblem(path="$.operations", message="expected an array of operations")]
    ops: list[Operation] = []
    problems: list[ChangeProblem] = []
    for i, item in enumerate(raw):
        try:
            ops.append(msgspec.convert(item, Operation))
        except msgspec.ValidationError as exc:
            message, _, where = str(exc).partition(" - at `")
            path = f"$.operations[{i}]" + where.rstrip("`").removeprefix("$")
            problems.append(ChangeProblem(path=path, message=message, operation=i))
    return ops, problems


# ---------------------------------------------------------------- flat entities


def entity_id(kind: str, fields: dict[str, Any]) -> object:
    """The id of an entity's fields (a channel's is ``"<device>/<ch>"``)."""
    if kind == "channel":
        device, ch = fields.get("device"), fields.get("ch")
        return f"{device}/{ch}" if isinstance(device, str) and isinstance(ch, str) else None
    return fields.get("id")


def flatten(raw: dict[str, Any]) -> Entities:
    """Flat entities of a decoded document (it must be well formed: a stored or validated one)."""
    out: Entities = {k: {} for k in KINDS}
    for company in raw.get("companies", []):
        out["company"][company["id"]] = {"id": company["id"], "name": company.get("name", "")}
        for site in company.get("sites", []):
            out["site"][site["id"]] = {
                "id": site["id"],
                "company": company["id"],
                "name": site.get("name", ""),
                "timezone": site["timezone"],
            }
            for device in site.get("devices", []):
                out["device"][device["id"]] = {"id": device["id"], "site": site["id"]}
                for ch in device.get("channels", []):
                    fields = {"device": device["id"], **ch}
                    out["channel"][f"{device['id']}/{ch['ch']}"] = fields
    for rule in raw.get("alarm_rules", []):
        out["rule"][rule["id"]] = dict(rule)
    return out


def unflatten(entities: Entities) -> dict[str, Any]:
    """The document of flat entities (ids sorted, like ``catalog export``); orphans are left out."""
    channels: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(entities["channel"]):
        fields = dict(entities["channel"][key])
        channels.setdefault(str(fields.pop("device")), []).append(fields)
    devices: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(entities["device"]):
        d = entities["device"][key]
        devices.setdefault(str(d.get("site")), []).append({"id": d["id"], "channels": channels.get(key, [])})
    sites: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(entities["site"]):
        s = {k: v for k, v in entities["site"][key].items() if k != "company"}
        s["devices"] = devices.get(key, [])
        sites.setdefault(str(entities["site"][key].get("company")), []).append(s)
    companies = [dict(entities["company"][k], sites=sites.get(k, [])) for k in sorted(entities["company"])]
    return {"companies": companies, "alarm_rules": [entities["rule"][k] for k in sorted(entities["rule"])]}


# ---------------------------------------------------------------- applying operations


class _Run:
    """Operations applied in order to flat entities; remembers which operation wrote what."""

    def __init__(self, entities: Entities) -> None:
        self.e = entities
        self.problems: list[ChangeProblem] = []
        self.written: dict[tuple[str, str], tuple[int, str]] = {}  # (kind, id) -> (op, path of its fields)

    def problem(self, i: int, where: str, message: str) -> None:
        self.problems.append(ChangeProblem(path=f"$.operations[{i}]{where}", message=message, operation=i))

    def put(self, i: int, kind: str, fields: dict[str, Any], path: str, *, create: bool) -> None:
        key = entity_id(kind, fields)
        if not isinstance(key, str):
            names = "device and ch" if kind == "channel" else "id"
            self.problem(i, path, f"a {kind} needs its {names} (strings)")
            return
        if create and key in self.e[kind]:
            self.problem(i, path, f"{kind} {key!r} exists; use update (or upsert)")
            return
        self.e[kind][key] = dict(fields)
        self.written[(kind, key)] = (i, f"$.operations[{i}]{path}")

    def update(self, i: int, kind: str, key: str, changes: dict[str, Any], path: str) -> None:
        current = self.e[kind].get(key)
        if current is None:
            self.problem(i, ".id", f"no {kind} {key!r} in the catalog")
            return
        frozen = {"device", "ch"} if kind == "channel" else {"id"}
        for name in changes.keys() & frozen:
            self.problem(i, f"{path}.{name}", f"an id cannot change; retire the {kind} and create a new one")
        if changes.keys() & frozen:
            return
        merged = {k: v for k, v in {**current, **changes}.items() if v is not None}
        self.e[kind][key] = merged
        self.written[(kind, key)] = (i, f"$.operations[{i}]{path}")

    def retire(self, i: int, kind: str, key: str) -> None:
        if key not in self.e[kind]:
            self.problem(i, ".id", f"no {kind} {key!r} in the catalog")
            return
        for child_kind, (parent_kind, field) in PARENT.items():
            if parent_kind == kind:
                for child in [k for k, v in self.e[child_kind].items() if v.get(field) == key]:
                    self.retire(i, child_kind, child)
        del self.e[kind][key]
        self.written.pop((kind, key), None)

    def apply(self, i: int, op: Operation) -> None:
        if isinstance(op, Create | Upsert):
            self.put(i, op.kind, op.value, ".value", create=isinstance(op, Create))
        elif isinstance(op, Update):
            self.update(i, op.kind, op.id, op.set, ".set")
        elif isinstance(op, Retire):
            self.retire(i, op.kind, op.id)
        elif isinstance(op, SetWhere):
            self.set_where(i, op)
        elif isinstance(op, DevicesCsv):
            self.devices_csv(i, op)
        else:
            self.e = flatten_loose(op.document, self, i)

    def set_where(self, i: int, op: SetWhere) -> None:
        chosen = [
            key for key, fields in self.e[op.kind].items() if selects(op.kind, fields, op.where, self.e)
        ]
        if not chosen:
            self.problem(i, ".where", f"selects no {op.kind}; check its values")
        for key in chosen:
            self.update(i, op.kind, key, op.set, ".set")

    def devices_csv(self, i: int, op: DevicesCsv) -> None:
        if op.site not in self.e["site"]:
            self.problem(
                i, ".site", f"no site {op.site!r} in the catalog (create it first, or in this change set)"
            )
            return
        for line, row in _csv_rows(op.csv, lambda where, msg: self.problem(i, where, msg)):
            fields: dict[str, Any] = {k: v for k, v in row.items() if v != ""}
            for name in ("scale", "offset"):
                if name in fields:
                    try:
                        fields[name] = float(fields[name])
                    except ValueError:
                        self.problem(i, f".csv[line {line}].{name}", f"{fields[name]!r} is not a number")
                        fields.pop(name)
            device = fields.get("device")
            if isinstance(device, str):
                self.e["device"][device] = {"id": device, "site": op.site}
                self.written[("device", device)] = (i, f"$.operations[{i}].csv[line {line}]")
            self.put(i, "channel", fields, f".csv[line {line}]", create=False)


def _csv_rows(text: str, problem: Any) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text.strip()))
    header = tuple(reader.fieldnames or ())
    missing = [c for c in CSV_COLUMNS[:4] if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        problem(
            ".csv[line 1]",
            f"header must name {', '.join(CSV_COLUMNS)} (missing: {', '.join(missing) or '-'};"
            f" unknown: {', '.join(unknown) or '-'})",
        )
        return
    for n, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            problem(f".csv[line {n}]", f"expected {len(header)} columns")
            continue
        yield n, {k: v.strip() for k, v in row.items()}


def flatten_loose(raw: object, run: _Run, i: int) -> Entities:
    """Flat entities of a whole document given in an operation (its structure is checked at the document)."""
    checked = validate(raw)
    if checked.document is None:
        for p in checked.problems:
            run.problem(i, ".document" + p.path.removeprefix("$"), p.message)
        return run.e
    run.written = {}
    return flatten(msgspec.to_builtins(checked.document))


def selects(kind: str, fields: dict[str, Any], where: dict[str, Any], e: Entities) -> bool:
    """Say whether a bulk edit's ``where`` holds for an entity (see :class:`SetWhere`)."""
    attrs = dict(fields)
    if kind == "rule":
        attrs.update(_watched(fields, e))
    elif kind == "channel":
        device = e["device"].get(str(fields.get("device")), {})
        site = e["site"].get(str(device.get("site")), {})
        attrs.update(site=device.get("site"), company=site.get("company"))
    elif kind == "device":
        attrs["company"] = e["site"].get(str(fields.get("site")), {}).get("company")
    for name, wanted in where.items():
        if name == "ids":
            if entity_id(kind, fields) not in wanted:
                return False
        elif attrs.get(name) != wanted:
            return False
    return True


def _watched(rule: dict[str, Any], e: Entities) -> dict[str, Any]:
    """The series attributes a rule watches: its series' (a series rule) or its match's."""
    series = rule.get("series")
    if isinstance(series, str):
        for ch in e["channel"].values():
            if ch.get("series") == series:
                device = e["device"].get(str(ch.get("device")), {})
                site = e["site"].get(str(device.get("site")), {})
                return {
                    "unit": ch.get("unit", ""),
                    "kind": ch.get("kind"),
                    "site": device.get("site"),
                    "company": site.get("company"),
                }
        return {}
    match = rule.get("match") or {}
    return {k: match[k] for k in ("company", "site", "unit", "kind") if k in match}


# ---------------------------------------------------------------- the plan


def plan(base: CatalogDocument, operations: list[Operation]) -> Planned:
    """Apply operations to ``base`` and validate the result whole.

    Steps: 1. flatten the base; 2. run each operation in order, collecting its
    own problems; 3. report entities whose parent does not exist; 4. rebuild
    the document and validate it, each problem placed at the operation that
    wrote the field when one did.
    """
    run = _Run(flatten(msgspec.to_builtins(base)))
    for i, op in enumerate(operations):
        run.apply(i, op)
    _orphans(run)
    raw = unflatten(run.e)
    checked = validate(raw)
    owners = _owners(raw)
    problems = list(run.problems) + [_place(p, owners, run) for p in checked.problems]
    warnings = tuple(_place(p, owners, run) for p in checked.warnings)
    if problems:
        return Planned(document=None, raw=raw, problems=tuple(problems), warnings=warnings)
    return Planned(document=checked.document, raw=raw, warnings=warnings)


def _orphans(run: _Run) -> None:
    for kind, (parent, field) in PARENT.items():
        for key, fields in run.e[kind].items():
            if fields.get(field) not in run.e[parent]:
                op, path = run.written.get((kind, key), (None, None))
                where = f"{path}.{field}" if path else f"$.{kind}[{key!r}]"
                run.problems.append(
                    ChangeProblem(
                        path=where,
                        operation=op,
                        entity=f"{kind} {key}",
                        message=f"no {parent} {fields.get(field)!r} in the catalog",
                    )
                )


def _owners(raw: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(document path prefix, kind, id) of every entity, deepest first."""
    out: list[tuple[str, str, str]] = []
    for i, company in enumerate(raw["companies"]):
        cpath = f"$.companies[{i}]"
        for j, site in enumerate(company["sites"]):
            spath = f"{cpath}.sites[{j}]"
            for k, device in enumerate(site["devices"]):
                dpath = f"{spath}.devices[{k}]"
                for n, ch in enumerate(device["channels"]):
                    out.append((f"{dpath}.channels[{n}]", "channel", f"{device['id']}/{ch.get('ch')}"))
                out.append((dpath, "device", str(device["id"])))
            out.append((spath, "site", str(site["id"])))
        out.append((cpath, "company", str(company["id"])))
    out.extend((f"$.alarm_rules[{i}]", "rule", str(r.get("id"))) for i, r in enumerate(raw["alarm_rules"]))
    out.sort(key=lambda o: -len(o[0]))
    return out


def _place(p: Problem, owners: list[tuple[str, str, str]], run: _Run) -> ChangeProblem:
    for prefix, kind, key in owners:
        if p.path == prefix or p.path.startswith((prefix + ".", prefix + "[")):
            written = run.written.get((kind, key))
            if written is None:
                return ChangeProblem(path=p.path, message=p.message, entity=f"{kind} {key}")
            op, path = written
            rest = p.path[len(prefix) :]
            return ChangeProblem(path=path + rest, message=p.message, operation=op, entity=f"{kind} {key}")
    return ChangeProblem(path=p.path, message=p.message)
