"""What a catalog change does, worked out before it is applied; and the diff of any two versions (pure).

:func:`diff` compares two documents entity by entity (companies, sites,
devices, channels, rules) and lists each added, retired or changed entity with
its fields before and after.

:func:`impact` says what the workers will do differently:

- series added and removed;
- rule -> series bindings gained and lost (a ``match`` rule binds every series
  it selects);
- each alarm instance that is firing now (given by the caller, read from the
  alarm state) is *kept* (same rule type, still bound: it evaluates under the
  new parameters from its next reading, with its state; nothing is sent
  because of the edit), *reset* (the rule's type changed: the instance starts
  over from ``ok`` at its next reading, no notification for the drop) or
  *dropped* (the rule is gone or no longer selects the series: no ``ok`` is
  ever sent for it);
- series whose stats change meaning (scale, offset, unit, kind, or a site time
  zone that moves their days and months): windows already written keep the old
  values until a rebuild replay recomputes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from wenu_stream.catalog.changes import KINDS, flatten
from wenu_stream.catalog.directory import build_snapshot
from wenu_stream.catalog.document import CatalogDocument

REBUILD_HINT = (
    "stats windows already written keep the old values: recompute them with "
    "`wenu-stream checkpoints reset --app processing --to timestamp <since> --rebuild` "
    "(a replay within the stream's retention)"
)
STATS_FIELDS = ("scale", "offset", "unit", "kind")


class EntityChange(msgspec.Struct, frozen=True, kw_only=True):
    """One entity that differs: ``fields`` maps a field to ``[before, after]`` (None: absent)."""

    kind: str
    id: str
    action: Literal["added", "retired", "changed"]
    fields: dict[str, list[Any]]


class Binding(msgspec.Struct, frozen=True, order=True):
    """A rule watching a series (one alarm instance once the series reports)."""

    rule: str
    series: str


class AlarmImpact(msgspec.Struct, frozen=True, kw_only=True):
    rule: str
    series: str
    state: str
    outcome: Literal["kept", "reset", "dropped"]
    note: str


class StatsImpact(msgspec.Struct, frozen=True, kw_only=True):
    series: str
    fields: dict[str, list[Any]]
    hint: str = REBUILD_HINT


class Impact(msgspec.Struct, frozen=True, kw_only=True):
    """What applying a change does to series, rule bindings, firing alarms and stats."""

    series_added: list[str]
    series_removed: list[str]
    bindings_gained: list[Binding]
    bindings_lost: list[Binding]
    alarms: list[AlarmImpact]
    stats: list[StatsImpact]
    changes: list[EntityChange]


def diff(old: CatalogDocument, new: CatalogDocument) -> list[EntityChange]:
    """Entity-level differences from ``old`` to ``new``, in kind order then id order."""
    a, b = flatten(msgspec.to_builtins(old)), flatten(msgspec.to_builtins(new))
    out: list[EntityChange] = []
    for kind in KINDS:
        for key in sorted(a[kind].keys() | b[kind].keys()):
            before, after = a[kind].get(key), b[kind].get(key)
            if before == after:
                continue
            action: Literal["added", "retired", "changed"] = (
                "added" if before is None else "retired" if after is None else "changed"
            )
            before, after = before or {}, after or {}
            fields = {
                f: [before.get(f), after.get(f)]
                for f in sorted(before.keys() | after.keys())
                if before.get(f) != after.get(f)
            }
            out.append(EntityChange(kind=kind, id=key, action=action, fields=fields))
    return out


def _rule_types(doc: CatalogDocument) -> dict[str, str]:
    return {r.id: str(type(r).__struct_config__.tag) for r in doc.alarm_rules}


def impact(old: CatalogDocument, new: CatalogDocument, firing: Iterable[tuple[str, str, str]] = ()) -> Impact:
    """Work out the impact of replacing ``old`` by ``new``.

    Args:
        old: the catalog now (the change set's base).
        new: the catalog the change set produces.
        firing: ``(rule, series, state)`` of the alarm instances to report on
            (the firing and pending ones, from the alarm state).
    """
    s_old, s_new = build_snapshot(0, old), build_snapshot(0, new)
    bound_old = {Binding(r.id, s) for s, rules in s_old.rules_by_series.items() for r in rules}
    bound_new = {Binding(r.id, s) for s, rules in s_new.rules_by_series.items() for r in rules}
    types_old, types_new = _rule_types(old), _rule_types(new)
    alarms = []
    for rule, series, state in sorted(firing):
        b = Binding(rule, series)
        if b not in bound_new:
            outcome, note = (
                "dropped",
                "the rule no longer watches this series: the instance is removed, no ok is sent",
            )
        elif types_old.get(rule) != types_new.get(rule):
            outcome, note = "reset", "the rule's type changed: the instance starts over at its next reading"
        else:
            outcome, note = (
                "kept",
                "keeps its state; evaluates under the new parameters from its next reading",
            )
        alarms.append(AlarmImpact(rule=rule, series=series, state=state, outcome=outcome, note=note))  # type: ignore[arg-type]
    stats = []
    for series in sorted(s_old.series.keys() & s_new.series.keys()):
        was, now = s_old.series[series], s_new.series[series]
        fields = {
            f: [getattr(was, f), getattr(now, f)] for f in STATS_FIELDS if getattr(was, f) != getattr(now, f)
        }
        if was.timezone != now.timezone:
            fields["timezone"] = [was.timezone, now.timezone]
        if fields:
            stats.append(StatsImpact(series=series, fields=fields))
    return Impact(
        series_added=sorted(s_new.series.keys() - s_old.series.keys()),
        series_removed=sorted(s_old.series.keys() - s_new.series.keys()),
        bindings_gained=sorted(bound_new - bound_old), bindings_lost=sorted(bound_old - bound_new),
        alarms=alarms, stats=stats, changes=diff(old, new),
    )  # fmt: skip
