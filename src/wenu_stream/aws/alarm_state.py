"""Durable alarm state in DynamoDB: one item per ``(rule, series)`` instance, fenced by version.

Table ``alarms.state_table`` (hash key ``pk``):

- instance items, ``pk = "<rule>#<series>"``: the msgpack :class:`InstanceState`
  in ``blob`` plus readable copies (``version``, ``state``, ``rule``, ``series``,
  ``company``, ``site``, ``severity``, ``last_t``, ``last_transition``,
  ``updated_at``) for ``wenu-stream alarms list``, and ``shard_key =
  "<stream>#<shard>"``, indexed by the ``by-shard`` GSI (keys only) so a shard
  that starts on a worker finds every instance it owned;
- one clock item per shard, ``pk = "@shard#<stream>#<shard>"`` (``@`` cannot
  start a rule id): the shard's watermark and the wall time its last reading
  was seen, so idle ticks continue across a restart; it is also the head of the
  shard's journal (``aws.alarm_journal``).

An instance item is written when it matters to a reader or to another shard: a
new instance, a changed state (``ok``/``pending``/``firing``), a notifying
transition, the first commit of a worker that took the shard, the end of the
shard (its children look instances up by item). Every other change of a commit
goes into one journal item of the shard, so a live commit costs a few writes
per shard instead of one per instance and reading; the readable copies on an
instance item (``last_t``, ``last_value``, ``updated_at``) are as of its last
item write.

Instance writes are conditional: an instance is put only if the stored ``version`` is
lower (never overwrite a newer state). An equal stored version is the same
state written by an earlier attempt (evaluation is deterministic) and counts as
done; a higher one means another worker owns the instance now, and raises
:class:`StaleAlarmState`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import msgspec

from wenu_stream.alarms.durable import LastTransition, ShardClock
from wenu_stream.alarms.engine import InstanceState
from wenu_stream.alarms.shard import InstanceKey
from wenu_stream.aws.alarm_journal import COMPACT_EVERY, Head, Journal, head_of, newest
from wenu_stream.aws.common import ConditionFailed, Item, batch_get, paginate, write_if
from wenu_stream.aws.tables import BY_SHARD
from wenu_stream.errors import StaleAlarmState
from wenu_stream.tasks import bounded

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(InstanceState)


def instance_pk(rule: str, series: str) -> str:
    """Hash key of an instance item."""
    return f"{rule}#{series}"


class DynamoAlarmStateStore:
    """Loads and saves alarm instance states through an open aiobotocore DynamoDB client."""

    def __init__(self, client: DynamoDBClient, *, table: str, stream: str, concurrency: int = 16) -> None:
        self._client = client
        self._table = table
        self._stream = stream
        self._limit = concurrency
        self._journal = Journal(client, table, uuid.uuid4().hex)
        self._shards: dict[str, _Shard] = {}

    def shard_key(self, shard_id: str) -> str:
        return f"{self._stream}#{shard_id}"

    async def load_shard(
        self, shard_id: str, *, claim: bool = True
    ) -> tuple[list[InstanceState], ShardClock | None]:
        """Return every stored instance of a shard (consistent reads) and its clock.

        With ``claim`` (a shard this worker starts processing) its journal is
        claimed first, so a commit of a previous owner fails from then on;
        without (the ended parent of a child shard), it is only read.

        The ``by-shard`` index is eventually consistent, so it only lists the
        keys; the states themselves are read consistently from the table. An
        instance too fresh to be in the index yet is found by
        :meth:`load_instances` at its series' next reading.
        """
        index = paginate(
            self._client.query, TableName=self._table, IndexName=BY_SHARD,
            KeyConditionExpression="shard_key = :s",
            ExpressionAttributeValues={":s": {"S": self.shard_key(shard_id)}},
        )  # fmt: skip
        keys = [item["pk"]["S"] async for item in index]
        items = await self._batch_get(keys)
        head_pk = self._clock_pk(shard_id)
        if claim:
            await self._journal.claim(
                head_pk
            )  # before reading: a commit of the previous owner from now on fails
        clock = await self._client.get_item(
            TableName=self._table, Key={"pk": {"S": head_pk}}, ConsistentRead=True
        )
        head = head_of(clock.get("Item"))
        written = [_DECODER.decode(i["blob"]["B"]) for i in items]
        states = newest(await self._journal.read(head), written)
        if claim:
            self._shards[shard_id] = _Shard(head, states, {(s.rule, s.series): s.state for s in written})
        return list(states.values()), _clock(clock.get("Item"))

    async def load_instances(self, keys: Sequence[InstanceKey]) -> list[InstanceState]:
        """Return the stored states of the given ``(rule, series)`` instances that exist."""
        items = await self._batch_get([instance_pk(r, s) for r, s in keys])
        return [_DECODER.decode(i["blob"]["B"]) for i in items]

    async def remove(self, keys: Iterable[InstanceKey]) -> None:
        """Delete instances (a dropped rule, a rule whose type changed, a series it no longer selects)."""
        keys = list(keys)
        for shard in self._shards.values():
            for k in keys:
                shard.states.pop(k, None)
                shard.written.pop(k, None)
        calls = [
            lambda k=k: self._client.delete_item(TableName=self._table, Key={"pk": {"S": instance_pk(*k)}})
            for k in keys
        ]
        await bounded(calls, self._limit)

    async def save(
        self,
        shard_id: str,
        states: Iterable[InstanceState],
        *,
        severity: Callable[[str], str],
        last: Callable[[InstanceKey], LastTransition | None],
        now_ms: int,
    ) -> int:
        """Put changed states, each only over an older version; return how many were already stored.

        Args:
            shard_id: the shard that evaluated them (indexed for :meth:`load_shard`).
            states: the states to store.
            severity: the severity of a rule id (kept readable on the item).
            last: the newest notifying transition of an instance in this flush, or None.
            now_ms: wall time, for ``updated_at``.

        Raises:
            StaleAlarmState: a stored version is newer than ours.
        """
        shard_key = self.shard_key(shard_id)
        shard = await self._shard(shard_id)
        own: list[InstanceState] = []
        journal: list[InstanceState] = []
        for s in states:
            key = (s.rule, s.series)
            shard.states[key] = s
            notable = shard.first or shard.ended or last(key) is not None or shard.written.get(key) != s.state
            (own if notable else journal).append(s)
        shard.first = False
        calls = [
            lambda s=s: self._put(_item(s, shard_key, severity(s.rule), last((s.rule, s.series)), now_ms))
            for s in own
        ]
        already = sum(await bounded(calls, self._limit))
        shard.written.update(((s.rule, s.series), s.state) for s in own)
        shard.pending.extend(journal)  # written with the clock (``save_clock``), the commit's last write
        return already

    async def settle(self, shard_id: str, *, severity: Callable[[str], str], now_ms: int) -> None:
        """Write every instance of an ended shard to its own item (its children look them up by item)."""
        shard = await self._shard(shard_id)
        shard.ended = True
        shard_key = self.shard_key(shard_id)
        calls = [
            lambda s=s: self._put(_item(s, shard_key, severity(s.rule), None, now_ms))
            for s in shard.states.values()
        ]
        await bounded(calls, self._limit)
        shard.written.update((k, s.state) for k, s in shard.states.items())

    async def save_clock(self, shard_id: str, clock: ShardClock) -> None:
        """Store the shard's clock on its head item, with the commit's journal item (only while this worker
        owns the shard; the sink calls it last in every commit that saved states)."""
        fields: Item = {
            n: {"NULL": True} if v is None else {"N": str(v)}
            for n, v in msgspec.structs.asdict(clock).items()
        }
        shard = await self._shard(shard_id)
        if shard.pending:
            await self._append(shard_id, shard, fields)
        elif not await self._journal.set_clock(self._clock_pk(shard_id), fields):
            raise await self._stale(shard_id, [])

    async def _shard(self, shard_id: str) -> _Shard:
        shard = self._shards.get(shard_id)
        if shard is None:  # saved without being loaded here (a test, a tool): claim it as it is
            await self._journal.claim(self._clock_pk(shard_id))
            shard = self._shards[shard_id] = _Shard(Head(), {}, {})
        return shard

    async def _append(self, shard_id: str, shard: _Shard, fields: Item) -> None:
        """Write the commit's journal item (a snapshot every ``COMPACT_EVERY``) with the clock on the head."""
        head_pk, prefix, states = self._clock_pk(shard_id), self.shard_key(shard_id), shard.pending
        if len(shard.head.journal) + 1 >= COMPACT_EVERY:
            everything = list(shard.states.values())
            head = await self._journal.compact(head_pk, prefix, everything, shard.head, fields)
            if head is None:
                raise await self._stale(shard_id, states)
            shard.head = head
        else:
            key = await self._journal.append(head_pk, prefix, states, fields)
            if key is None:
                raise await self._stale(shard_id, states)
            shard.head.journal.append(key)
        shard.pending = []

    async def _stale(self, shard_id: str, ours: Sequence[InstanceState]) -> StaleAlarmState:
        """The error for a commit refused because another worker claimed the shard (naming a newer instance)."""
        self._shards.pop(shard_id, None)
        stored = {
            i["pk"]["S"]: i for i in await self._batch_get([instance_pk(s.rule, s.series) for s in ours])
        }
        for s in ours:
            item = stored.get(instance_pk(s.rule, s.series))
            if item is not None and int(item["version"]["N"]) >= s.version:
                return StaleAlarmState(
                    f"alarm instance {instance_pk(s.rule, s.series)} is at version {item['version']['N']} in "
                    f"{self._table}, ours is {s.version}: another worker owns the shard now; stop and let it "
                    "replay from the checkpoint"
                )
        return StaleAlarmState(
            f"shard {self.shard_key(shard_id)} of {self._table} was taken by another worker; stop and let it "
            "replay from the checkpoint"
        )

    async def _put(self, item: Item) -> int:
        # UpdateItem rather than PutItem: an item keeps its last_transition when this flush has none.
        fields = {k: v for k, v in item.items() if k != "pk"}
        names = {f"#a{i}": k for i, k in enumerate(fields)}
        values = {f":a{i}": v for i, v in enumerate(fields.values())}
        out = await write_if(
            self._client.update_item,
            TableName=self._table, Key={"pk": item["pk"]},
            UpdateExpression="SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(fields))),
            ConditionExpression="attribute_not_exists(pk) OR #v < :v",
            ExpressionAttributeNames=names | {"#v": "version"},
            ExpressionAttributeValues=values | {":v": item["version"]},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )  # fmt: skip
        if not isinstance(out, ConditionFailed):
            return 0
        old = out.item
        if not old:  # an endpoint that does not return it on a failed condition (dynalite): read it
            got = await self._client.get_item(
                TableName=self._table, Key={"pk": item["pk"]}, ConsistentRead=True
            )
            old = got.get("Item", {})
        stored = int(old.get("version", {}).get("N", "-1"))
        ours = int(item["version"]["N"])
        if stored == ours:
            return 1  # written by an earlier attempt of this flush, or before a crash
        raise StaleAlarmState(
            f"alarm instance {item['pk']['S']} is at version {stored} in {self._table}, ours is {ours}: "
            "another worker owns the shard now; stop and let it replay from the checkpoint"
        )

    async def _batch_get(self, pks: Sequence[str]) -> list[Item]:
        keys: list[Item] = [{"pk": {"S": pk}} for pk in pks]
        return await batch_get(self._client.batch_get_item, self._table, keys, concurrency=self._limit)

    def _clock_pk(self, shard_id: str) -> str:
        return f"@shard#{self.shard_key(shard_id)}"


class _Shard:
    """What the store knows of a shard it holds: its journal head, every state, the state each item shows."""

    def __init__(
        self, head: Head, states: dict[InstanceKey, InstanceState], written: dict[InstanceKey, str]
    ) -> None:
        self.head = head
        self.states = states
        self.written = written  # instance -> the state (ok/pending/firing) on its item
        self.first = True  # the first commit after loading writes its instances' items (taking them over)
        self.ended = False
        self.pending: list[InstanceState] = []  # saved to the journal with the commit's clock


def _item(s: InstanceState, shard_key: str, severity: str, last: LastTransition | None, now_ms: int) -> Item:
    item: Item = {
        "pk": {"S": instance_pk(s.rule, s.series)}, "shard_key": {"S": shard_key},
        "blob": {"B": _ENCODER.encode(s)}, "version": {"N": str(s.version)}, "state": {"S": s.state},
        "rule": {"S": s.rule}, "rule_type": {"S": s.rule_type}, "series": {"S": s.series},
        "company": {"S": s.company}, "site": {"S": s.site}, "severity": {"S": severity},
        "updated_at": {"N": str(now_ms)},
    }  # fmt: skip
    if s.last_t is not None:
        item["last_t"] = {"N": str(s.last_t)}
    if s.last_value is not None:
        item["last_value"] = {"N": repr(s.last_value)}
    if last is not None:
        item["last_transition"] = {"M": {
            "transition_id": {"S": last.transition_id}, "to_state": {"S": last.to_state}, "at": {"N": str(last.at)},
        }}  # fmt: skip
    return item


def _clock(item: Item | None) -> ShardClock | None:
    if item is None:
        return None

    def num(name: str) -> int | None:
        value = item.get(name, {})
        return int(value["N"]) if "N" in value else None

    return ShardClock(
        watermark=num("watermark"),
        seen_watermark=num("seen_watermark"),
        seen_wall=num("seen_wall"),
        generation=num("generation") or 0,
    )
