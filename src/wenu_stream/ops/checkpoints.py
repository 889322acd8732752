"""List and reset the checkpoints of an application's lease table (KCL 2.x/3.x or our native driver; sync boto3).

Reset, in this order (``reset``):

1. read every lease row; an unknown table, an unknown ``--shard``, a sequence
   number the shard does not hold, or a timestamp outside the stream's
   retention is refused (``ConfigError``, exit 2) before anything is written;
2. liveness: read the rows again after the failover time. A lease whose
   ``leaseCounter`` moved is held by a live worker (the KCL and our driver both
   renew by bumping it). Live leases refuse the reset unless ``force``;
3. resolve the target per shard into the new ``checkpoint`` value (a sequence
   number or a sentinel) and build the plan with the counters of step 2;
4. (rebuild) write a rebuild marker per shard (``ingest.rebuild``), before the lease;
5. per shard, one conditional UpdateItem: ``leaseCounter`` must still be the
   planned one. It sets the checkpoint, clears ``checkpointSubSequenceNumber``,
   ``ownerSwitchesSinceCheckpoint`` and the KCL 3.x pending/handoff fields,
   removes ``leaseOwner`` (any worker may take the lease at once) and bumps
   the counter, so a worker that still holds it (``force``) fails its next
   renewal or checkpoint and stops without checkpointing over the reset.
   A row that moved in between is reported as a conflict and left alone.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import msgspec
from botocore.exceptions import ClientError

from wenu_stream.aws.common import error_code, is_conditional_failure
from wenu_stream.drivers.native.leases import Lease, read_leases
from wenu_stream.errors import ConfigError
from wenu_stream.model import LATEST, TRIM_HORIZON
from wenu_stream.ops import positions
from wenu_stream.timeparse import parse_moment

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_kinesis.client import KinesisClient

TargetKind = Literal["trim-horizon", "latest", "timestamp", "sequence"]
STOP_HINT = (
    "stop the workers first: `wenu-stream service pause --app A --cluster C` (suspends the scaling, stops "
    "the ECS tasks, waits until the leases are free) or stop `wenu-stream run` and wait for the leases to "
    "expire, then run the reset again (and `service resume`); or pass --force (see --help for the risks)"
)


class Target(msgspec.Struct, frozen=True):
    """Where to reset to: ``trim-horizon``, ``latest``, ``timestamp`` (``value`` ISO 8601) or ``sequence``."""

    kind: TargetKind
    value: str = ""

    def describe(self) -> str:
        return f"{self.kind} {self.value}".strip()


class ShardStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One line of ``checkpoints list``."""

    shard_id: str
    lease_owner: str | None
    lease_counter: int
    checkpoint: str
    sub_sequence_number: int
    parent_shard_ids: tuple[str, ...]
    lag: positions.Lag | None


class ResetStep(msgspec.Struct, frozen=True, kw_only=True):
    """The change planned for one lease row."""

    shard_id: str
    lease_counter: int  # the write is conditional on this value
    lease_owner: str | None
    live: bool  # the counter moved during the liveness check
    old_checkpoint: str
    new_checkpoint: str
    resumes_at: str | None  # first sequence number that will be processed, when known


class ResetPlan(msgspec.Struct, frozen=True, kw_only=True):
    table: str
    target: Target
    steps: tuple[ResetStep, ...]

    @property
    def live(self) -> list[str]:
        return [s.shard_id for s in self.steps if s.live]


class ResetResult(msgspec.Struct, frozen=True, kw_only=True):
    written: tuple[str, ...]
    conflicts: tuple[str, ...]  # rows that moved after the plan: left unchanged


def parse_target(kind: str, value: str | None, *, now: dt.datetime) -> Target:
    """Validate ``--to KIND [VALUE]``; raises ``ConfigError`` naming the fix."""
    if kind in ("trim-horizon", "latest"):
        if value:
            raise ConfigError("--to", f"{kind} takes no value, got {value!r}", f"use --to {kind}")
        return Target(kind)  # type: ignore[arg-type]
    if kind == "sequence":
        if not value or not value.isdigit():
            raise ConfigError(
                "--to sequence", f"{value!r} is not a sequence number", "give the decimal digits"
            )
        return Target("sequence", value)
    if kind == "timestamp":
        at = parse_moment(value or "", now=now, field="--to timestamp")
        if at > now:
            raise ConfigError("--to timestamp", f"{value} is in the future", "give a time in the past")
        return Target("timestamp", at.isoformat())
    raise ConfigError(
        "--to", f"unknown target {kind!r}", "use trim-horizon, latest, timestamp TIME or sequence N"
    )


def read_rows(ddb: DynamoDBClient, table: str) -> list[Lease]:
    """Every lease row, sorted by shard id; an unknown table is a ``ConfigError``."""
    try:
        return read_leases(table, ddb)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise ConfigError(
                "--app / WENU_LEASE_TABLE",
                f"lease table {table!r} does not exist",
                "check the application name (the KCL table is the application name)",
            ) from None
        raise


def list_status(
    ddb: DynamoDBClient,
    kinesis: KinesisClient,
    table: str,
    stream: str,
    *,
    now_ms: int,
    lag: bool = True,
    count: bool = False,
) -> list[ShardStatus]:
    """Every lease of ``table`` with its position and (``lag``) how far behind the tip it is."""
    out = []
    for lease in read_rows(ddb, table):
        behind = None
        if lag:
            try:
                behind = positions.probe_lag(
                    kinesis,
                    stream,
                    lease.lease_key,
                    lease.checkpoint,
                    lease.checkpoint_sub_sequence_number,
                    now_ms,
                    count=count,
                )
            except ClientError:
                behind = None  # the shard left the stream (past retention): no lag to show
        out.append(
            ShardStatus(
                shard_id=lease.lease_key,
                lease_owner=lease.lease_owner,
                lease_counter=lease.lease_counter,
                checkpoint=lease.checkpoint,
                sub_sequence_number=lease.checkpoint_sub_sequence_number,
                parent_shard_ids=lease.parent_shard_ids,
                lag=behind,
            )
        )
    return out


def live_leases(before: Sequence[Lease], after: Sequence[Lease]) -> set[str]:
    """Shards whose lease counter moved between two reads one failover time apart (or that appeared)."""
    counters = {lease.lease_key: lease.lease_counter for lease in before}
    return {lease.lease_key for lease in after if counters.get(lease.lease_key) != lease.lease_counter}


def select(leases: Sequence[Lease], shards: Sequence[str]) -> list[Lease]:
    """The leases to reset: all, or those named (an unknown shard is a ``ConfigError``)."""
    if not shards:
        return list(leases)
    by_key = {lease.lease_key: lease for lease in leases}
    unknown = [s for s in shards if s not in by_key]
    if unknown:
        raise ConfigError(
            "--shard",
            f"no lease for {', '.join(unknown)}",
            f"use one of {', '.join(by_key) or '(the table is empty)'}",
        )
    return [by_key[s] for s in dict.fromkeys(shards)]


def check_retention(kinesis: KinesisClient, stream: str, at: dt.datetime, now: dt.datetime) -> None:
    """Refuse a timestamp older than the stream keeps records."""
    summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    oldest = now - dt.timedelta(hours=int(summary["RetentionPeriodHours"]))
    if at < oldest:
        raise ConfigError(
            "--to timestamp",
            f"{at.isoformat()} is older than the stream's retention "
            f"({summary['RetentionPeriodHours']} h: records since {oldest.isoformat(timespec='seconds')})",
            "use --to trim-horizon to replay everything the stream still holds",
        )


def resolve(kinesis: KinesisClient, stream: str, lease: Lease, target: Target) -> tuple[str, str | None]:
    """The new checkpoint value of ``lease`` for ``target``, and where processing resumes if known."""
    if target.kind == "trim-horizon":
        return TRIM_HORIZON, None
    if target.kind == "latest":
        return LATEST, None
    if target.kind == "sequence":
        problem = positions.check_sequence(kinesis, stream, lease.lease_key, target.value)
        if problem:
            raise ConfigError(
                "--to sequence",
                f"{target.value} is not a position of {lease.lease_key} ({problem})",
                "copy a sequence number of that shard, e.g. from `checkpoints list` or a dead letter",
            )
        return target.value, None
    return positions.checkpoint_before(
        kinesis, stream, lease.lease_key, dt.datetime.fromisoformat(target.value)
    )


def plan_reset(
    ddb: DynamoDBClient,
    kinesis: KinesisClient,
    *,
    table: str,
    stream: str,
    target: Target,
    shards: Sequence[str] = (),
    failover_s: float,
    wait: Callable[[float], None] = time.sleep,
    now: dt.datetime,
) -> ResetPlan:
    """Steps 1-3 of the module docstring. Raises ``ConfigError`` for anything the operator must fix."""
    before = select(read_rows(ddb, table), shards)
    if target.kind == "sequence" and len(before) != 1:
        raise ConfigError(
            "--shard",
            "a sequence number belongs to one shard",
            "name exactly one shard with --shard when resetting to a sequence number",
        )
    if target.kind == "timestamp":
        check_retention(kinesis, stream, dt.datetime.fromisoformat(target.value), now)
    wait(failover_s)
    after = select(read_rows(ddb, table), [lease.lease_key for lease in before])
    live = live_leases(before, after)
    steps = []
    for lease in after:
        checkpoint, resumes = resolve(kinesis, stream, lease, target)
        steps.append(
            ResetStep(
                shard_id=lease.lease_key,
                lease_counter=lease.lease_counter,
                lease_owner=lease.lease_owner,
                live=lease.lease_key in live,
                old_checkpoint=lease.position,
                new_checkpoint=checkpoint,
                resumes_at=resumes,
            )
        )
    return ResetPlan(table=table, target=target, steps=tuple(steps))


def apply_reset(ddb: DynamoDBClient, plan: ResetPlan) -> ResetResult:
    """Step 5: one conditional write per step; rows that moved since the plan are reported, not written."""
    written, conflicts = [], []
    for step in plan.steps:
        try:
            ddb.update_item(
                TableName=plan.table,
                Key={"leaseKey": {"S": step.shard_id}},
                UpdateExpression=(
                    "SET checkpoint = :cp, checkpointSubSequenceNumber = :zero, "
                    "ownerSwitchesSinceCheckpoint = :zero, leaseCounter = :next "
                    "REMOVE leaseOwner, checkpointOwner, pendingCheckpoint, "
                    "pendingCheckpointSubSequenceNumber, pendingCheckpointState"
                ),
                ConditionExpression="leaseCounter = :counter",
                ExpressionAttributeValues={
                    ":cp": {"S": step.new_checkpoint},
                    ":zero": {"N": "0"},
                    ":counter": {"N": str(step.lease_counter)},
                    ":next": {"N": str(step.lease_counter + 1)},
                },
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            conflicts.append(step.shard_id)
            continue
        written.append(step.shard_id)
    return ResetResult(written=tuple(written), conflicts=tuple(conflicts))
