"""Rule preview: run the live alarm engine over a series' stored stats windows, or its exact readings (pure).

From the warehouse (``preview_readings``), the readings are the ones the live
run evaluated, in the same order: the preview is exact, and an unchanged rule
reproduces the transitions that were notified, with the same ids.

Stats windows keep, per 15-minute window, the first and last readings (value
and time) and, for gauges, the minimum and the maximum (values only). The
preview turns each window into readings in time order:

- counters: the first and the last reading, at their times (consumption and
  no_data rules see the register as the live run saw it at those points);
- gauges: the first reading, the two extremes placed at one third and two
  thirds of the way to the last reading (the minimum first when the window
  rose, the maximum first when it fell), and the last reading.

Then :class:`~wenu_stream.alarms.shard.AlarmEngine`, the code that runs live,
evaluates them and is ticked to the end of the range (so ``no_data`` fires for
a silence at the end). The result is exact for what the windows keep
(threshold crossings of an extreme, consumption per window, silences longer
than a window) and approximate for what they do not (``stuck`` runs and
``rate_of_change`` between readings inside a window, and ``for_s`` shorter
than a window); ``exact`` is False whenever the rule type depends on that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from wenu_stream.alarms.engine import Transition
from wenu_stream.alarms.rules import AlarmRule, ConsumptionRule, NoDataRule, ThresholdRule
from wenu_stream.alarms.shard import AlarmEngine
from wenu_stream.model import SeriesReading


class SeriesFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the catalog says about the previewed series."""

    series: str
    company: str
    site: str
    timezone: str
    kind: str
    unit: str


class Preview(msgspec.Struct, frozen=True, kw_only=True):
    transitions: list[Transition]
    readings: int  # synthesized from the windows
    windows: int
    exact: bool


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def readings_of(windows: Iterable[dict[str, Any]], facts: SeriesFacts) -> list[SeriesReading]:
    """Readings that stand for the windows (rows as ``ops.readers.window_row(..., times=True)`` gives them)."""
    points: list[tuple[int, float]] = []
    for w in windows:
        if w.get("first") is None or "first_at" not in w or "last_at" not in w:
            continue
        t0, t1 = _ms(w["first_at"]), _ms(w["last_at"])
        first, last = float(w["first"]), float(w["last"])
        points.append((t0, first))
        if facts.kind == "gauge" and t1 - t0 >= 3 and w.get("min") is not None and w.get("max") is not None:
            lo, hi = float(w["min"]), float(w["max"])
            extremes = (lo, hi) if last >= first else (hi, lo)
            points.append((t0 + (t1 - t0) // 3, extremes[0]))
            points.append((t0 + 2 * (t1 - t0) // 3, extremes[1]))
        if t1 > t0:
            points.append((t1, last))
    points.sort()
    return [
        SeriesReading(
            series=facts.series,
            company=facts.company,
            site=facts.site,
            timezone=facts.timezone,
            kind=facts.kind,
            unit=facts.unit,
            device="preview",
            ch="preview",
            seq=n,
            index=0,
            t=t,
            value=v,
            raw_value=v,
        )
        for n, (t, v) in enumerate(points)
    ]


def preview(rule: AlarmRule, facts: SeriesFacts, windows: Sequence[dict[str, Any]], end_ms: int) -> Preview:
    """The transitions ``rule`` would have produced on the series over the windows, up to ``end_ms``."""
    readings = readings_of(windows, facts)
    exact = isinstance(rule, ConsumptionRule | NoDataRule) or (
        isinstance(rule, ThresholdRule) and rule.for_s == 0
    )
    return Preview(
        transitions=_run(rule, readings, end_ms), readings=len(readings), windows=len(windows), exact=exact
    )


def preview_readings(rule: AlarmRule, readings: Sequence[SeriesReading], end_ms: int) -> Preview:
    """The transitions ``rule`` would have produced over exact readings (in shard order: time, device, seq)."""
    return Preview(transitions=_run(rule, readings, end_ms), readings=len(readings), windows=0, exact=True)


def _run(rule: AlarmRule, readings: Sequence[SeriesReading], end_ms: int) -> list[Transition]:
    engine = AlarmEngine([rule])
    found = engine.apply(readings)
    found.extend(engine.tick(end_ms))
    return found
