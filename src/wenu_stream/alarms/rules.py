"""Alarm rules of the catalog: the typed model, parsing and semantic checks (pure).

A rule is one of five Structs tagged by ``type``. It watches either one
``series`` or every series a ``match`` selects. Parsing is strict (an unknown
field or type is an error with its JSON path); semantic checks that need the
catalog (the kind of the watched series) live in :func:`rule_problems`, which
catalog import runs after parsing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal, Protocol

import msgspec
from msgspec import Meta

Severity = Literal["critical", "major", "minor", "warning"]
Kind = Literal["gauge", "counter"]
Op = Literal[">", ">=", "<", "<="]
Window = Literal["15m", "1h", "1d", "1mo"]
Id = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]


class Match(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Selects series by their attributes; every given field must hold."""

    company: Id | None = None
    site: Id | None = None
    unit: str | None = None
    kind: Kind | None = None


class _Rule(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    tag_field="type",
):
    """Fields every rule carries. Exactly one of ``series`` and ``match`` is set."""

    id: Id
    severity: Severity
    series: Id | None = None
    match: Match | None = None

    def __post_init__(self) -> None:
        # msgspec turns this ValueError into a ValidationError at the rule's JSON path.
        if (self.series is None) == (self.match is None):
            raise ValueError("a rule needs exactly one of `series` and `match`")


class ThresholdRule(_Rule, tag="threshold", frozen=True, kw_only=True):
    """Fires when ``reading op value`` has held ``for_s`` seconds; clears past ``clear``."""

    op: Op
    value: float
    clear: float | None = None  # hysteresis level; None means ``value``
    for_s: Annotated[float, Meta(ge=0)] = 0

    @property
    def clear_level(self) -> float:
        """The level the value must cross back over to resolve."""
        return self.value if self.clear is None else self.clear


class NoDataRule(_Rule, tag="no_data", frozen=True, kw_only=True):
    """Fires when a series that has reported is silent for ``after_s`` seconds."""

    after_s: Annotated[float, Meta(gt=0)]


class RateOfChangeRule(_Rule, tag="rate_of_change", frozen=True, kw_only=True):
    """Fires when the change between consecutive readings, per minute, exceeds the bound."""

    max_abs_delta_per_min: Annotated[float, Meta(ge=0)]


class StuckRule(_Rule, tag="stuck", frozen=True, kw_only=True):
    """Fires when ``count`` consecutive readings carry the same value."""

    count: Annotated[int, Meta(ge=1)]


class ConsumptionRule(_Rule, tag="consumption", frozen=True, kw_only=True):
    """Fires when a counter's consumption in the current ``window`` exceeds ``max``."""

    window: Window
    max: float


AlarmRule = ThresholdRule | NoDataRule | RateOfChangeRule | StuckRule | ConsumptionRule


class SeriesInfo(Protocol):
    """What :func:`matches` reads from a series (a ``SeriesReading`` fits)."""

    @property
    def series(self) -> str: ...
    @property
    def company(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def kind(self) -> str: ...


def parse_rules(raw: Sequence[object]) -> list[AlarmRule]:
    """Convert the ``alarm_rules`` list of a catalog document into rules.

    Args:
        raw: the decoded JSON list.

    Returns:
        The rules, in document order.

    Raises:
        msgspec.ValidationError: the first problem, with its JSON path relative
            to the list (``$[3].op``).
    """
    return msgspec.convert(raw, list[AlarmRule])


def matches(rule: AlarmRule, info: SeriesInfo) -> bool:
    """Say whether ``rule`` watches the series described by ``info``."""
    if rule.series is not None:
        return rule.series == info.series
    m = rule.match
    assert m is not None  # guaranteed by _Rule.__post_init__
    return (
        (m.company is None or m.company == info.company)
        and (m.site is None or m.site == info.site)
        and (m.unit is None or m.unit == info.unit)
        and (m.kind is None or m.kind == info.kind)
    )


def rule_problems(rule: AlarmRule, series_kind: str | None) -> list[str]:
    """List what is semantically wrong with a parsed rule.

    Each problem reads ``"<field>: <what is wrong and the fix>"`` so catalog
    import can prefix the rule's JSON path (``$.alarm_rules[3].``).

    Args:
        rule: a parsed rule.
        series_kind: the catalog kind of ``rule.series`` (``gauge`` or
            ``counter``), or None when the series is not in the catalog. Ignored
            for ``match`` rules.

    Returns:
        The problems; empty when the rule is sound.
    """
    problems: list[str] = []
    if rule.series is not None and series_kind is None:
        problems.append(f"series: {rule.series!r} is not a series of the catalog; name an existing series")
    problems.extend(_type_problems(rule, series_kind))
    return problems


def _type_problems(rule: AlarmRule, series_kind: str | None) -> list[str]:
    if isinstance(rule, ThresholdRule):
        return _threshold_problems(rule)
    if isinstance(rule, StuckRule) and rule.count < 2:
        return ["count: must be at least 2 (one reading is always 'the same'); use 2 or more"]
    if isinstance(rule, RateOfChangeRule) and not math.isfinite(rule.max_abs_delta_per_min):
        return ["max_abs_delta_per_min: must be a finite number"]
    if isinstance(rule, ConsumptionRule):
        return _consumption_problems(rule, series_kind)
    if isinstance(rule, NoDataRule) and not math.isfinite(rule.after_s):
        return ["after_s: must be a finite number of seconds"]
    return []


def _threshold_problems(rule: ThresholdRule) -> list[str]:
    problems = [
        f"{name}: must be a finite number"
        for name, x in (("value", rule.value), ("clear", rule.clear or 0.0), ("for_s", rule.for_s))
        if not math.isfinite(x)
    ]
    if problems:
        return problems
    upward = rule.op in (">", ">=")
    if upward and rule.clear_level > rule.value:
        problems.append(f"clear: must be at or below value ({rule.value}) for op {rule.op!r} (hysteresis)")
    if not upward and rule.clear_level < rule.value:
        problems.append(f"clear: must be at or above value ({rule.value}) for op {rule.op!r} (hysteresis)")
    return problems


def _consumption_problems(rule: ConsumptionRule, series_kind: str | None) -> list[str]:
    problems: list[str] = []
    if not math.isfinite(rule.max) or rule.max < 0:
        problems.append("max: must be a finite number >= 0")
    if rule.series is not None and series_kind not in (None, "counter"):
        problems.append(f"series: consumption needs a counter series, {rule.series!r} is a {series_kind}")
    if rule.match is not None and rule.match.kind != "counter":
        problems.append('match: consumption needs counter series; add "kind": "counter" to match')
    return problems
