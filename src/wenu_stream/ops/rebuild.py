"""Rebuild markers: how a checkpoint reset asks the replay to recompute results instead of skipping them.

The interface between ``checkpoints reset --rebuild`` (which writes a marker)
and the processor and sinks (which read it). A marker lives in the state table
(``sinks.state_table``) next to the shard's state items, under its own hash key
so neither ``DynamoStateStore`` nor ``report`` ever mistake it for a state::

    pk  = "rebuild#<app>#<stream>#<shard>"   pos = "marker"
    from_checkpoint (S)  generation (N)  target (S)  created_at (S)

Contract (the reset itself is described in ``wenu_stream.ops.checkpoints``):

1. The reset writes the marker *before* the lease row, with ``generation`` one
   more than the highest marker of *any* shard of the application and stream
   (1 for the first rebuild; every shard of one reset gets the same number),
   and ``from_checkpoint`` equal to the lease position it then writes. One
   number across shards matters when a series' readings cross shards (a
   reshard): a child replaying under the same generation as its rebuilt
   parent continues the parent's results instead of starting them over.
2. ``PipelineProcessor.initialize(shard, checkpoint, parents)`` calls
   ``read_rebuild_marker``. If ``marker.applies(checkpoint)`` (the shard
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

import datetime as dt
from typing import Any

import msgspec

MARKER_POS = "marker"


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


def marker_key(app: str, stream: str, shard_id: str) -> dict[str, dict[str, str]]:
    """The state-table key of a shard's marker."""
    return {"pk": {"S": f"rebuild#{app}#{stream}#{shard_id}"}, "pos": {"S": MARKER_POS}}


def _to_item(marker: RebuildMarker) -> dict[str, dict[str, str]]:
    return marker_key(marker.app, marker.stream, marker.shard_id) | {
        "from_checkpoint": {"S": marker.from_checkpoint}, "generation": {"N": str(marker.generation)},
        "target": {"S": marker.target}, "created_at": {"S": marker.created_at},
    }


def _from_item(app: str, stream: str, shard_id: str, item: dict[str, Any]) -> RebuildMarker:
    return RebuildMarker(app=app, stream=stream, shard_id=shard_id, from_checkpoint=item["from_checkpoint"]["S"],
                         generation=int(item["generation"]["N"]), target=item.get("target", {}).get("S", ""),
                         created_at=item.get("created_at", {}).get("S", ""))


def get_marker(ddb: Any, table: str, app: str, stream: str, shard_id: str) -> RebuildMarker | None:
    """The shard's marker (sync boto3 client), or None."""
    out = ddb.get_item(TableName=table, Key=marker_key(app, stream, shard_id), ConsistentRead=True)
    return _from_item(app, stream, shard_id, out["Item"]) if "Item" in out else None


async def read_rebuild_marker(client: Any, table: str, app: str, stream: str, shard_id: str) -> RebuildMarker | None:
    """The shard's marker through an open aiobotocore DynamoDB client, or None (for the processor)."""
    out = await client.get_item(TableName=table, Key=marker_key(app, stream, shard_id), ConsistentRead=True)
    return _from_item(app, stream, shard_id, out["Item"]) if "Item" in out else None


def next_generation(ddb: Any, table: str, app: str, stream: str, shard_ids: Any) -> int:
    """One more than the highest marker generation of the given shards (all of the stream's leases)."""
    markers = [get_marker(ddb, table, app, stream, shard_id) for shard_id in shard_ids]
    return 1 + max((m.generation for m in markers if m is not None), default=0)


def write_marker(ddb: Any, table: str, *, app: str, stream: str, shard_id: str, from_checkpoint: str,
                 target: str, now: dt.datetime, generation: int | None = None) -> RebuildMarker:
    """Write a shard's marker (default generation: its previous one + 1), conditional on the marker read (sync)."""
    previous = get_marker(ddb, table, app, stream, shard_id)
    if generation is None:
        generation = (previous.generation if previous else 0) + 1
    if previous is not None and generation <= previous.generation:
        raise ValueError(f"rebuild generation {generation} of {shard_id} is not above its marker's {previous.generation}")
    marker = RebuildMarker(app=app, stream=stream, shard_id=shard_id, from_checkpoint=from_checkpoint,
                           generation=generation, target=target, created_at=now.isoformat(timespec="seconds"))
    if previous is None:
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
    else:
        condition = {"ConditionExpression": "generation = :g",
                     "ExpressionAttributeValues": {":g": {"N": str(previous.generation)}}}
    ddb.put_item(TableName=table, Item=_to_item(marker), **condition)
    return marker
