"""Lease rows in the KCL lease-table schema, and conditional writes on them.

The schema follows KCL 3.x ``DynamoDBLeaseSerializer`` so the KCL, our worker
and the operator tools read the same positions: hash key ``leaseKey`` (the
shard id), ``leaseOwner``, ``leaseCounter`` (N), ``checkpoint`` (a sequence
number or TRIM_HORIZON / LATEST / AT_TIMESTAMP / SHARD_END),
``checkpointSubSequenceNumber`` (N), ``ownerSwitchesSinceCheckpoint`` (N),
``parentShardId`` (SS), ``childShardIds`` (SS), ``startingHashKey`` /
``endingHashKey`` (decimal strings), and the 3.x handoff fields
``checkpointOwner``, ``pendingCheckpoint*`` and ``throughputKBps``, which we
read and clear the way the KCL does. The table is PAY_PER_REQUEST with the
``LeaseOwnerToLeaseKeyIndex`` GSI (leaseOwner HASH, leaseKey RANGE,
KEYS_ONLY) that KCL 3.x creates.

Every mutation is conditional on ``leaseCounter`` (and ``leaseOwner`` for
the holder's writes) and bumps the counter, exactly like the KCL: two workers
never both hold a shard, and a failed condition means the lease is lost.

Graceful handoff, as KCL 3.x does it: a worker that takes a lease from a live
owner sets ``checkpointOwner`` to that owner (``take(..., handoff=True)``). The
old owner's next renewal fails; it finds itself in ``checkpointOwner``, stops
reading, flushes, and writes its last checkpoint with ``hand_over`` (conditional
on ``checkpointOwner``, leaving the counter alone), which also clears the field.
The new owner starts only once the field is gone, or after ``failover_ms``
(``end_handoff``: the old owner is presumed dead).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from botocore.exceptions import ClientError

from wenu_stream.aws.common import ConditionFailed, error_code, paginate, paginate_sync, write_if
from wenu_stream.errors import LeaseLostError
from wenu_stream.model import SENTINELS, SHARD_END, TRIM_HORIZON

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient as SyncDynamoDBClient
    from types_aiobotocore_dynamodb.client import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import AttributeValueTypeDef

OWNER_INDEX = "LeaseOwnerToLeaseKeyIndex"

_S = {
    "leaseKey": "lease_key",
    "leaseOwner": "lease_owner",
    "checkpoint": "checkpoint",
    "startingHashKey": "starting_hash_key",
    "endingHashKey": "ending_hash_key",
    "checkpointOwner": "checkpoint_owner",
    "pendingCheckpoint": "pending_checkpoint",
}
_N = {
    "leaseCounter": "lease_counter",
    "checkpointSubSequenceNumber": "checkpoint_sub_sequence_number",
    "ownerSwitchesSinceCheckpoint": "owner_switches_since_checkpoint",
}
_SS = {"parentShardId": "parent_shard_ids", "childShardIds": "child_shard_ids"}


class Lease(msgspec.Struct, frozen=True, kw_only=True):
    """One lease row (single-stream mode: ``lease_key`` is the shard id)."""

    lease_key: str
    lease_owner: str | None = None
    lease_counter: int = 0
    checkpoint: str = TRIM_HORIZON
    checkpoint_sub_sequence_number: int = 0
    owner_switches_since_checkpoint: int = 0
    parent_shard_ids: tuple[str, ...] = ()
    child_shard_ids: tuple[str, ...] = ()
    starting_hash_key: str | None = None
    ending_hash_key: str | None = None
    checkpoint_owner: str | None = None
    pending_checkpoint: str | None = None

    @property
    def ended(self) -> bool:
        return self.checkpoint == SHARD_END

    @property
    def position(self) -> str:
        """The checkpoint as handed to ``ShardProcessor.initialize``: ``"<seq>"``, ``"<seq>:<sub>"`` or a sentinel."""
        if self.checkpoint_sub_sequence_number and self.checkpoint not in SENTINELS:
            return f"{self.checkpoint}:{self.checkpoint_sub_sequence_number}"
        return self.checkpoint


def to_item(lease: Lease) -> dict[str, AttributeValueTypeDef]:
    """The DynamoDB item of ``lease`` (absent and empty values are left out, as the KCL does)."""
    item: dict[str, AttributeValueTypeDef] = {}
    for attr, field in _S.items():
        if (value := getattr(lease, field)) is not None:
            item[attr] = {"S": value}
    for attr, field in _N.items():
        item[attr] = {"N": str(getattr(lease, field))}
    for attr, field in _SS.items():
        if values := getattr(lease, field):
            item[attr] = {"SS": sorted(values)}
    return item


def from_item(item: Mapping[str, AttributeValueTypeDef]) -> Lease:
    """Read a lease row written by us or by the KCL (unknown attributes are ignored)."""
    values: dict[str, Any] = {}
    for attr, field in _S.items():
        if attr in item:
            values[field] = item[attr]["S"]
    for attr, field in _N.items():
        if attr in item:
            values[field] = int(item[attr]["N"])
    for attr, field in _SS.items():
        if attr in item:
            values[field] = tuple(sorted(item[attr]["SS"]))
    return Lease(**values)


class LeaseTable:
    """Conditional reads and writes of lease rows through an open aiobotocore DynamoDB client."""

    def __init__(self, client: DynamoDBClient, name: str) -> None:
        self.client = client
        self.name = name

    async def ensure(self, timeout: float = 120.0) -> None:
        """Create the table (PAY_PER_REQUEST + the KCL 3.x GSI) unless it exists; wait until ACTIVE."""
        try:
            await self.client.create_table(
                TableName=self.name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": "leaseKey", "AttributeType": "S"},
                    {"AttributeName": "leaseOwner", "AttributeType": "S"},
                ],
                KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": OWNER_INDEX,
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                        "KeySchema": [
                            {"AttributeName": "leaseOwner", "KeyType": "HASH"},
                            {"AttributeName": "leaseKey", "KeyType": "RANGE"},
                        ],
                    }
                ],
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":
                raise
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            table = (await self.client.describe_table(TableName=self.name))["Table"]
            if table["TableStatus"] == "ACTIVE":
                return
            if loop.time() > deadline:
                raise TimeoutError(f"lease table {self.name} not ACTIVE after {timeout} s")
            await asyncio.sleep(0.5)

    async def scan(self) -> list[Lease]:
        """Every lease row (strongly consistent, all pages)."""
        rows = paginate(self.client.scan, TableName=self.name, ConsistentRead=True)
        return [from_item(item) async for item in rows]

    async def create(self, lease: Lease) -> bool:
        """Put a new lease row unless one exists; True if this call created it."""
        out = await write_if(
            self.client.put_item,
            TableName=self.name,
            Item=to_item(lease),
            ConditionExpression="attribute_not_exists(leaseKey)",
        )
        return not isinstance(out, ConditionFailed)

    async def take(self, lease: Lease, owner: str, *, handoff: bool = False) -> Lease | None:
        """Take ``lease`` (unowned, expired or stolen) if its counter is still the one we saw; None if we lost the race.

        ``handoff``: the owner is alive; it is asked to hand over (module docstring) through ``checkpointOwner``.
        """
        switch = lease.lease_owner is not None and lease.lease_owner != owner
        expression = "SET leaseOwner = :me, leaseCounter = :next REMOVE checkpointOwner"
        values: dict[str, AttributeValueTypeDef] = {":me": {"S": owner}}
        if switch:
            expression = (
                "SET leaseOwner = :me, leaseCounter = :next, ownerSwitchesSinceCheckpoint = "
                "ownerSwitchesSinceCheckpoint + :one REMOVE checkpointOwner"
            )
            values[":one"] = {"N": "1"}
        if switch and handoff:
            expression = expression.replace(" REMOVE checkpointOwner", ", checkpointOwner = :old")
            values[":old"] = {"S": lease.lease_owner or ""}
        try:
            return await self._update(lease, expression, values, owner_check=False)
        except LeaseLostError:
            return None

    async def renew(self, lease: Lease) -> Lease:
        """Bump the counter of a lease we hold. Raises ``LeaseLostError`` if someone else moved it."""
        return await self._update(lease, "SET leaseCounter = :next", {})

    async def checkpoint(
        self, lease: Lease, sequence: str, sub: int = 0, child_shard_ids: tuple[str, ...] = ()
    ) -> Lease:
        """Record a checkpoint on a lease we hold (clears pending checkpoints and owner switches, as the KCL does).

        Raises:
            LeaseLostError: the lease moved on (stolen or expired and taken): do not go on processing the shard.
        """
        expression = (
            "SET checkpoint = :cp, checkpointSubSequenceNumber = :sub, ownerSwitchesSinceCheckpoint = :zero,"
            " leaseCounter = :next"
        )
        values: dict[str, AttributeValueTypeDef] = {
            ":cp": {"S": sequence},
            ":sub": {"N": str(sub)},
            ":zero": {"N": "0"},
        }
        if child_shard_ids:
            expression += ", childShardIds = :children"
            values[":children"] = {"SS": sorted(child_shard_ids)}
        expression += " REMOVE pendingCheckpoint, pendingCheckpointSubSequenceNumber, pendingCheckpointState"
        return await self._update(lease, expression, values)

    async def get(self, lease_key: str) -> Lease | None:
        """The lease row as stored now (a consistent read), or None."""
        out = await self.client.get_item(
            TableName=self.name, Key={"leaseKey": {"S": lease_key}}, ConsistentRead=True
        )
        return from_item(out["Item"]) if "Item" in out else None

    async def hand_over(self, lease_key: str, me: str, sequence: str | None) -> bool:
        """The old owner's last write of a graceful handoff: its checkpoint (if any), and ``checkpointOwner`` cleared.

        Conditional on ``checkpointOwner`` being ``me`` (the counter is the new owner's); False if the new
        owner gave up waiting and took over (its ``end_handoff`` cleared the field).
        """
        expression = "REMOVE checkpointOwner"
        values: dict[str, AttributeValueTypeDef] = {":me": {"S": me}}
        if sequence is not None:
            expression = (
                "SET checkpoint = :cp, checkpointSubSequenceNumber = :zero, ownerSwitchesSinceCheckpoint = :zero "
                "REMOVE checkpointOwner, pendingCheckpoint, pendingCheckpointSubSequenceNumber, pendingCheckpointState"
            )
            values |= {":cp": {"S": sequence}, ":zero": {"N": "0"}}
        out = await write_if(
            self.client.update_item,
            TableName=self.name,
            Key={"leaseKey": {"S": lease_key}},
            UpdateExpression=expression,
            ConditionExpression="checkpointOwner = :me",
            ExpressionAttributeValues=values,
        )
        return not isinstance(out, ConditionFailed)

    async def end_handoff(self, lease: Lease) -> Lease:
        """The new owner stops waiting for a handoff (the old owner is presumed dead): ``checkpointOwner`` cleared."""
        return await self._update(lease, "SET leaseCounter = :next REMOVE checkpointOwner", {})

    async def release(self, lease: Lease) -> Lease:
        """Give up a lease we hold (``leaseOwner`` removed) so another worker takes it at once."""
        return await self._update(lease, "SET leaseCounter = :next REMOVE leaseOwner, checkpointOwner", {})

    async def _update(
        self,
        lease: Lease,
        expression: str,
        values: dict[str, AttributeValueTypeDef],
        *,
        owner_check: bool = True,
    ) -> Lease:
        condition = "leaseCounter = :counter"
        values = values | {
            ":counter": {"N": str(lease.lease_counter)},
            ":next": {"N": str(lease.lease_counter + 1)},
        }
        if owner_check:
            condition += " AND leaseOwner = :owner"
            values[":owner"] = {"S": lease.lease_owner or ""}
        out = await write_if(
            self.client.update_item,
            TableName=self.name,
            Key={"leaseKey": {"S": lease.lease_key}},
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        if isinstance(out, ConditionFailed):
            raise LeaseLostError(f"lease {lease.lease_key} moved on from counter {lease.lease_counter}")
        return from_item(out["Attributes"])


def read_leases(table: str, client: SyncDynamoDBClient | None = None) -> list[Lease]:
    """Every lease row of ``table``, sorted by lease key (sync; for tests and operator tools)."""
    import boto3

    ddb = client or boto3.client("dynamodb")
    rows = paginate_sync(ddb.scan, TableName=table, ConsistentRead=True)
    return sorted((from_item(i) for i in rows), key=lambda lease: lease.lease_key)
