"""What a consumer must make of a simulation: counts to compare a run against."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import msgspec

from wenu_stream.devtools.simulate.faults import ACCEPTED, DUPLICATE, Fault
from wenu_stream.devtools.simulate.generator import ProducedRecord


class Outcomes(msgspec.Struct, kw_only=True):
    """Expected totals of a run.

    Attributes:
        records: Kinesis records put; ``aggregated`` of them are KPL aggregates.
        user_records: Envelopes put (inside aggregates or alone).
        messages: Distinct messages sent (a duplicate is not a new message).
        accepted: Messages a consumer must accept (once each).
        duplicates: User records a consumer must recognise as repeats and drop.
        rejected: Reason code -> user records a consumer must dead-letter.
        faults: Fault name -> how many times it was applied (``late``, ``gap`` and ``counter_reset`` included).
        bytes: Sum of the Kinesis records' data sizes.
    """

    records: int = 0
    aggregated: int = 0
    user_records: int = 0
    messages: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = msgspec.field(default_factory=dict)
    faults: dict[str, int] = msgspec.field(default_factory=dict)
    bytes: int = 0


class Tally:
    """Counts produced records one at a time (so a producer can count as it streams)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()

    def add(self, record: ProducedRecord) -> None:
        """Count one Kinesis record and its user records."""
        counts = self._counts
        counts["records"] += 1
        counts["aggregated"] += record.aggregated
        counts["bytes"] += len(record.data)
        for user in record.users:
            counts["user_records"] += 1
            counts["messages"] += user.fault is not Fault.DUPLICATE
            if user.expect == ACCEPTED:
                counts["accepted"] += 1
            elif user.expect == DUPLICATE:
                counts["duplicates"] += 1
            else:
                self._rejected[user.expect] += 1
            if user.fault is not None:
                self._faults[user.fault.value] += 1
            self._faults["reorder"] += user.late
            self._faults["gap"] += user.after_gap
            self._faults["counter_reset"] += user.reset

    def result(self) -> Outcomes:
        """The totals so far."""
        return Outcomes(
            **self._counts,
            rejected=dict(sorted(self._rejected.items())),
            faults={k: v for k, v in sorted(self._faults.items()) if v},
        )


def expected_outcomes(records: Iterable[ProducedRecord]) -> Outcomes:
    """Count what a consumer must make of ``records`` (for example a list from ``generate``)."""
    tally = Tally()
    for record in records:
        tally.add(record)
    return tally.result()
