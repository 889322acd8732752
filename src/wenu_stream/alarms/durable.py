"""What the alarms application keeps durable, as values (pure): shard clocks, last transitions, ledger entries.

The adapters (``aws.alarm_state``, ``aws.notifier``) store them; ``alarms.sink``
and the ports speak them.
"""

from __future__ import annotations

import msgspec

from wenu_stream.alarms.engine import Transition

# Statuses of a ledger entry: recorded, then published or (an operator's shelf covered it) shelved.
PENDING = "pending"
PUBLISHED = "published"
SHELVED = "shelved"


class ShardClock(msgspec.Struct, frozen=True, kw_only=True):
    """Where a shard's time stood: its watermark and the last reading seen (reading time, wall time)."""

    watermark: int | None
    seen_watermark: int | None
    seen_wall: int | None
    generation: int = 0  # the rebuild generation (ingest.rebuild) the shard's time was kept under


class LastTransition(msgspec.Struct, frozen=True):
    """The newest notifying transition of an instance, kept on its item for ``alarms list``."""

    transition_id: str
    to_state: str
    at: int


class LedgerEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A transition as the ledger keeps it: enough to publish it again after a crash."""

    series: str
    sk: str
    transition_id: str
    body: bytes
    attributes: dict[str, str]
    status: str
    rule: str = ""

    @property
    def at(self) -> int:
        """The transition's reading time (the range key starts with it)."""
        return int(self.sk[:15])


def sort_key(tr: Transition) -> str:
    """Range key of a transition: reading time first, so history reads in time order."""
    return f"{tr.at:015d}#{tr.transition_id}"
