"""Alarm notifications to SNS, exactly one per transition, through a ledger in DynamoDB.

The ledger is the transitions table (``alarms.transitions_table``), which is
also the history ``wenu-stream alarms history`` reads: hash key ``series``,
range key ``sk = "<at, 15 digits>#<transition_id>"``. A transition goes through:

1. :meth:`SnsNotifier.record`: a conditional put (``attribute_not_exists``)
   with ``status = pending`` and ``pending_shard = <stream>#<shard>``. The
   alarms sink records *before* it stores the instance states, so a state saved
   ahead of the checkpoint never hides a transition that was not announced:
   either the replay produces it again, or it is pending in the ledger.
2. :meth:`SnsNotifier.publish`: SNS Publish (JSON body; ``severity``,
   ``company`` and ``state`` as String message attributes for filter
   policies), retried with backoff until it succeeds or ``give_up_s`` passes;
   then ``status = published`` and ``pending_shard`` is removed. Before
   that, the instance's shelf (set by an operator through the API, kept on
   its state item) is read consistently; a transition it covers
   (``alarms.shelving.covers``, by reading time) is not published but marked
   ``status = shelved``, which ends it exactly like a publication: the ledger
   keeps it (the history shows it) and a replay or recovery never sends it.
3. :meth:`SnsNotifier.recover`, when a shard starts: every entry still pending
   for the shard (sparse GSI ``pending`` on ``pending_shard``) is published.

The residual duplicate: a crash after SNS accepted a message and before the
ledger says ``published`` publishes it once more on recovery (at least once in
that window of one request). A FIFO topic (ARN ending in ``.fifo``) closes it:
the message carries ``MessageDeduplicationId = transition_id``, and SNS drops
the repeat within its 5-minute deduplication interval. The default is a
standard topic, because FIFO topics deliver only to SQS subscribers (no
e-mail, SMS or HTTPS endpoints).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from botocore.exceptions import BotoCoreError, ClientError

from wenu_stream.alarms.durable import PENDING, PUBLISHED, SHELVED, LedgerEntry, sort_key
from wenu_stream.alarms.engine import Transition, notification
from wenu_stream.alarms.shelving import Shelf, covers
from wenu_stream.aws.alarm_state import instance_pk
from wenu_stream.aws.common import ConditionFailed, paginate, write_if
from wenu_stream.aws.tables import PENDING_INDEX
from wenu_stream.backoff import Backoff
from wenu_stream.errors import SinkError
from wenu_stream.log import get_logger
from wenu_stream.metrics import Metrics
from wenu_stream.tasks import bounded

_SHELF = msgspec.json.Decoder(Shelf)


class SnsNotifier:
    """Publishes alarm transitions exactly once (see the module docstring for the residual window)."""

    def __init__(
        self,
        sns: Any,
        dynamodb: Any,
        *,
        topic_arn: str,
        table: str,
        stream: str,
        metrics: Metrics | None = None,
        state_table: str | None = None,
        give_up_s: float = 300.0,
        backoff_cap_s: float = 10.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.sns = sns  # public: swapped in tests to stage an outage
        self._ddb = dynamodb
        self._topic = topic_arn
        self._fifo = topic_arn.endswith(".fifo")
        self._table = table
        self._state_table = state_table  # where operators' shelves are kept (None: nothing is ever shelved)
        self._stream = stream
        self._metrics = metrics
        self._give_up_s = give_up_s
        self._cap = backoff_cap_s
        self._wall = wall
        self._log: Any = get_logger("wenu.alarms.notifier")

    async def record(self, shard_id: str, transitions: Sequence[Transition]) -> list[LedgerEntry]:
        """Write each transition to the ledger as pending unless it is there; return those not yet published."""
        calls = [lambda tr=tr: self._record_one(shard_id, tr) for tr in transitions]
        entries = await bounded(calls, 8)
        return [e for e in entries if e.status == PENDING]

    async def publish(self, entries: Sequence[LedgerEntry]) -> None:
        """Publish pending entries, each retried until SNS takes it, and mark them published.

        Entries of one series go out in order, one at a time; series go out
        concurrently (at most 8 in flight).

        Raises:
            SinkError: SNS refused for ``give_up_s``; the entries stay pending
                and the caller must not checkpoint.
        """
        by_series: dict[str, list[LedgerEntry]] = {}
        for entry in entries:
            by_series.setdefault(entry.series, []).append(entry)
        await bounded([functools.partial(self._publish_in_order, group) for group in by_series.values()], 8)

    async def _publish_in_order(self, entries: Sequence[LedgerEntry]) -> None:
        for entry in entries:
            shelf = await self._shelf(entry)
            if shelf is not None and covers(shelf, entry.at):
                await self._mark_shelved(entry, shelf)
                continue
            message_id = await self._publish_with_backoff(entry)
            await self._ddb.update_item(
                TableName=self._table, Key={"series": {"S": entry.series}, "sk": {"S": entry.sk}},
                UpdateExpression="SET #st = :p, published_at = :now, message_id = :m REMOVE pending_shard",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues={":p": {"S": PUBLISHED}, ":now": {"N": str(int(self._wall() * 1000))},
                                           ":m": {"S": message_id}},
            )  # fmt: skip
            if self._metrics is not None:
                self._metrics.notifications.labels(
                    entry.attributes["severity"], entry.attributes["state"]
                ).inc()

    async def _shelf(self, entry: LedgerEntry) -> Shelf | None:
        """The instance's shelf, read consistently just before publishing (None: not shelved)."""
        if self._state_table is None or not entry.rule:
            return None
        out = await self._ddb.get_item(
            TableName=self._state_table,
            Key={"pk": {"S": instance_pk(entry.rule, entry.series)}},
            ConsistentRead=True,
            ProjectionExpression="shelf",
        )
        raw = out.get("Item", {}).get("shelf", {}).get("S")
        return None if raw is None else _SHELF.decode(raw)

    async def _mark_shelved(self, entry: LedgerEntry, shelf: Shelf) -> None:
        """Record that the transition was held back (not published): it leaves the pending index like a published one."""
        await self._ddb.update_item(
            TableName=self._table, Key={"series": {"S": entry.series}, "sk": {"S": entry.sk}},
            UpdateExpression="SET #st = :s, shelved_at = :now, shelved_by = :by REMOVE pending_shard",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={":s": {"S": SHELVED}, ":now": {"N": str(int(self._wall() * 1000))},
                                       ":by": {"S": shelf.by}},
        )  # fmt: skip
        self._log.info(
            "notification_shelved", transition_id=entry.transition_id, rule=entry.rule, series=entry.series
        )

    async def recover(self, shard_id: str) -> int:
        """Publish every entry a previous owner of the shard left pending; return how many."""
        entries: list[LedgerEntry] = []
        pending = paginate(
            self._ddb.query, TableName=self._table, IndexName=PENDING_INDEX,
            KeyConditionExpression="pending_shard = :s",
            ExpressionAttributeValues={":s": {"S": self._shard_key(shard_id)}},
        )  # fmt: skip
        async for item in pending:
            entry = await self._get(item["series"]["S"], item["sk"]["S"])
            if entry is not None and entry.status == PENDING:  # the index lags: check the table
                entries.append(entry)
        entries.sort(key=lambda e: e.sk)
        await self.publish(entries)
        if entries:
            self._log.info("pending_notifications_recovered", shard_id=shard_id, count=len(entries))
        return len(entries)

    async def _record_one(self, shard_id: str, tr: Transition) -> LedgerEntry:
        body, attributes = notification(tr)
        entry = LedgerEntry(
            series=tr.series,
            sk=sort_key(tr),
            transition_id=tr.transition_id,
            body=body,
            attributes=attributes,
            status=PENDING,
            rule=tr.rule,
        )
        item = _ledger_item(tr, entry, self._shard_key(shard_id), int(self._wall() * 1000))
        out = await write_if(
            self._ddb.put_item,
            TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(series)",
        )  # fmt: skip
        if not isinstance(out, ConditionFailed):
            return entry
        stored = await self._get(entry.series, entry.sk)  # recorded before: a replay, or a retried flush
        assert stored is not None, "conditional put failed on an item that does not exist"
        return stored

    async def _get(self, series: str, sk: str) -> LedgerEntry | None:
        out = await self._ddb.get_item(
            TableName=self._table, Key={"series": {"S": series}, "sk": {"S": sk}}, ConsistentRead=True
        )
        item = out.get("Item")
        if item is None:
            return None
        return LedgerEntry(
            series=series, sk=sk, transition_id=item["transition_id"]["S"], body=bytes(item["body"]["B"]),
            attributes={k: v["S"] for k, v in item["attributes"]["M"].items()}, status=item["status"]["S"],
            rule=item.get("rule", {}).get("S", ""),
        )  # fmt: skip

    async def _publish_with_backoff(self, entry: LedgerEntry) -> str:
        started = time.monotonic()
        backoff = Backoff(base=0.1, cap=self._cap)
        while True:
            try:
                out = await self.sns.publish(**self._request(entry))
                return str(out["MessageId"])
            except (ClientError, BotoCoreError, OSError) as exc:
                waited = time.monotonic() - started
                if waited >= self._give_up_s:
                    raise SinkError(
                        f"SNS refused notification {entry.transition_id} for {waited:.0f} s: {exc!r}"
                    ) from exc
                self._log.warning(
                    "notification_retry",
                    transition_id=entry.transition_id,
                    attempt=backoff.failures + 1,
                    error=repr(exc),
                )
                await backoff.sleep()

    def _request(self, entry: LedgerEntry) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TopicArn": self._topic, "Message": entry.body.decode(),
            "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in entry.attributes.items()},
        }  # fmt: skip
        if self._fifo:
            request["MessageDeduplicationId"] = entry.transition_id
            request["MessageGroupId"] = entry.series  # order per series
        return request

    def _shard_key(self, shard_id: str) -> str:
        return f"{self._stream}#{shard_id}"


def _ledger_item(tr: Transition, entry: LedgerEntry, shard_key: str, now_ms: int) -> dict[str, Any]:
    return {
        "series": {"S": tr.series}, "sk": {"S": entry.sk}, "transition_id": {"S": tr.transition_id},
        "rule": {"S": tr.rule}, "company": {"S": tr.company}, "site": {"S": tr.site},
        "severity": {"S": tr.severity}, "from_state": {"S": tr.from_state}, "to_state": {"S": tr.to_state},
        "value": {"NULL": True} if tr.value is None else {"N": repr(tr.value)},
        "at": {"N": str(tr.at)}, "onset": {"N": str(tr.onset)}, "body": {"B": entry.body},
        "attributes": {"M": {k: {"S": v} for k, v in entry.attributes.items()}},
        "status": {"S": PENDING}, "pending_shard": {"S": shard_key}, "recorded_at": {"N": str(now_ms)},
    }  # fmt: skip


async def resolve_topic_arn(sns: Any, topic_arn: str, topic_name: str) -> str:
    """Return the configured ARN, or find the topic named ``topic_name`` (ARNs are read, never built).

    Raises:
        SinkError: no topic of that name; run ``wenu-stream provision``.
    """
    if topic_arn:
        return topic_arn
    token: str | None = None
    while True:
        page = await sns.list_topics(**({"NextToken": token} if token else {}))
        for topic in page.get("Topics", []):
            if topic["TopicArn"].rsplit(":", 1)[-1] == topic_name:
                return str(topic["TopicArn"])
        token = page.get("NextToken")
        if not token:
            raise SinkError(
                f"no SNS topic named {topic_name!r}; run `wenu-stream provision` or set WENU_ALARMS_TOPIC_ARN"
            )
