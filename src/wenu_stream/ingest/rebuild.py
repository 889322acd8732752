"""Rebuild markers: how a checkpoint reset asks the replay to recompute results instead of skipping them.

The interface between ``checkpoints reset --rebuild`` (which writes a marker)
and the processor and sinks (which read it). A marker lives in the state table
(``sinks.state_table``) next to the shard's state items, under its own hash key
so neither ``DynamoStateStore`` nor ``report`` ever mistake it for a state::

    pk  = "rebuild#<app>#<stream>#<shard>"   pos = "marker"
    from_checkpoint (S)  generation (N)  target (S)  created_at (S)

Contract (the reset itself is described in ``wenu_stream.ops.checkpoints``;
the marker's DynamoDB item is read and written by ``wenu_stream.aws.state``):

1. The reset writes the marker *before* the lease row, with ``generation`` one
   more than the highest marker of *any* shard of the application and stream
   (1 for the first rebuild; every shard of one reset gets the same number),
   and ``from_checkpoint`` equal to the lease position it then writes. One
   number across shards matters when a series' readings cross shards (a
   reshard): a child replaying under the same generation as its rebuilt
   parent continues the parent's results instead of starting them over.
2. ``PipelineProcessor.initialize(shard, checkpoint, parents)`` reads the
   marker through ``StateStore.rebuild_marker``. If ``marker.applies(checkpoint)`` (the shard
   resumes from exactly the reset position) it starts with empty duplicate
   memory and empty totals, ignoring any state item saved at that position:
   the replay recounts everything from there. A later restart resumes from a
   newer checkpoint, so the marker no longer applies and the saved state is
   loaded as usual.
3. Whether or not it applies, the processor hands ``marker.generation`` (0
   without a marker) to every sink that has ``rebuild(shard_id, generation)``
   before the first ``write``. Sinks tag each item they write with the
   shard's current generation. On replay an item whose stored generation is
   lower than the current one is *recomputed* (treated as absent: the first
   replayed reading overwrites it and the generation is raised); an item of the
   current generation is fenced by position as usual (skip what was applied).
   For stats this rebuilds every window the replay touches; for alarm state it
   re-evaluates rule instances and their transitions (notifications keep their
   (series, rule, onset) ledger, so a rebuilt transition that was already
   notified is not sent twice).
4. The marker is never deleted by the worker (the generation must survive
   restarts); the next ``--rebuild`` raises it.

A rebuild only recomputes what the replay covers: a window that began before
the reset position loses the readings before it. Reset to a time at or before
the start of the oldest window to rebuild (minus the allowed lateness), or to
trim-horizon for a full rebuild. Also:

- duplicate memory starts empty, so a re-delivery of a message sent before the
  reset position counts as new (a trim-horizon rebuild has no such case);
- a series is restarted at its first reading under the new generation; series
  the replay never reaches keep their results (stats windows, alarm states);
- alarm transitions the rebuild finds again have the same ids and are not
  published twice; transitions it finds anew (the point of a rule fix) are;
- a rebuild of some shards only (``--shard``) gives them a generation above
  every other shard: a series that moved between shards (a reshard) restarts
  when it reaches a rebuilt shard. Rebuild every shard when series cross shards.

Tests: tests/unit (processor, stats sink, alarm engine) and
tests/integration/test_ops_rebuild.py (a catalog scale fix and an alarm rule
fix, each rebuilt end to end against the local stack).
"""

from __future__ import annotations

import msgspec


class RebuildMarker(msgspec.Struct, frozen=True, kw_only=True):
    """A request to rebuild a shard's results from ``from_checkpoint`` on, under ``generation``."""

    app: str
    stream: str
    shard_id: str
    from_checkpoint: str  # the lease position written by the reset ("<seq>" or a sentinel)
    generation: int
    target: str = ""  # what the operator asked for, e.g. "timestamp 2026-01-31T12:00:00+00:00"
    created_at: str = ""

    def applies(self, checkpoint: str | None) -> bool:
        """True when a shard resuming from ``checkpoint`` is starting the rebuild replay."""
        return checkpoint == self.from_checkpoint
