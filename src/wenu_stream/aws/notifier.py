"""Alarm notifications to SNS, exactly one per transition, through a ledger in DynamoDB.

The ledger is the transitions table (``alarms.transitions_table``), which is
also the history ``wenu-stream alarms history`` reads: hash key ``series``,
range key ``sk = "<at, 15 digits>#<transition_id>"``. A transition goes through:

1. :meth:`SnsNotifier.record`: a conditional put (``attribute_not_exists``)
   with ``status = pending`` and ``pending_shard = <stream>#<shard>``. The
   alarms sink records *before* it stores the instance states, so a state saved
   ahead of the checkpoint never hides a transition that was not announced:
   either the replay produces it again, or it is pending in the ledger.
2. :meth:`SnsNotifier.publish`, per entry, as one step a cancellation waits
   for (a lease lost mid-flush cancels the shard's consumer; the entry it is
   publishing is finished first):

   a. **claim** it: ``claimed_by = <this process>``, ``claimed_until = now +
      claim_ttl_s``, conditional on ``status = pending`` and no other live
      claim. An entry another process holds a live claim on is left to it
      (returned as *deferred*: the caller tries again later, and takes it over
      once the claim expired unmarked); an entry already published or shelved
      is done. Entries of one series go in order: after a deferred one, the
      rest of its series waits too. Within a process, an entry already being
      published is awaited, not sent again.
   b. read the instance's shelf (set by an operator through the API, kept on
      its state item) consistently; a transition it covers
      (``alarms.shelving.covers``, by reading time) is not published but marked
      ``status = shelved``, which ends it exactly like a publication.
   c. SNS Publish (JSON body; ``severity``, ``company`` and ``state`` as String
      message attributes for filter policies; with a ``describe`` function, also
      a subject and e-mail and SMS texts for people, ``alarms.message``, the JSON
      staying every other protocol's message), each attempt under a deadline
      (``attempt_s``) that ends before the claim does; the claim is extended
      before an attempt that could outlive it, and if it was taken over the
      entry is left to the new holder. Retried with backoff until it succeeds
      or ``give_up_s`` passes.
   d. **mark** it ``status = published`` (``pending_shard`` and the claim
      removed), conditional on ``claimed_by`` still being this process.
3. :meth:`SnsNotifier.recover`, when a shard starts: every entry still pending
   for the shard (sparse GSI ``pending`` on ``pending_shard``) goes through 2.

So two workers that both believe they own a shard for a moment (a lease
stolen while its old owner is mid-flush, a new owner recovering what the old
one is publishing) never both publish an entry: the claim picks one, and the
other waits until it marked the entry or its claim expired.

The remaining window: a process that dies (kill -9, OOM, a lost host) after
SNS accepted a message and before the mark, or whose publish attempt timed out
although SNS had taken it, leaves the entry claimed and pending; once the
claim expires (``claim_ttl_s``, 30 s) the next owner publishes it again. The
window is one SNS response plus one UpdateItem per notification
(``wenu_notification_mark_seconds`` measures it; on the local stack, 142
notifications: 20 ms mean, all under 100 ms). A FIFO topic
(ARN ending in ``.fifo``) closes it: the message carries
``MessageDeduplicationId = transition_id``, and SNS drops a repeat within its
5-minute deduplication interval (claims expire well inside it). The default is
a standard topic, because FIFO topics deliver only to SQS subscribers (no
e-mail, SMS or HTTPS endpoints). Clocks: a claim's expiry is compared with
the claimant's wall clock, and a claimant stops using it ``claim_margin_s``
(5 s) early, so hosts may disagree by that much.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from botocore.exceptions import BotoCoreError, ClientError

from wenu_stream.alarms.durable import PENDING, PUBLISHED, SHELVED, LedgerEntry, sort_key
from wenu_stream.alarms.engine import Notification, Transition, notification
from wenu_stream.alarms.message import Readable
from wenu_stream.alarms.shelving import Shelf, covers
from wenu_stream.aws.alarm_state import instance_pk
from wenu_stream.aws.common import ConditionFailed, Item, paginate, write_if
from wenu_stream.aws.tables import PENDING_INDEX
from wenu_stream.backoff import Backoff
from wenu_stream.errors import SinkError
from wenu_stream.health import Health
from wenu_stream.log import get_logger
from wenu_stream.metrics import Metrics
from wenu_stream.tasks import bounded

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import AttributeValueTypeDef
    from types_aiobotocore_sns.client import SNSClient
    from types_aiobotocore_sns.type_defs import ListTopicsInputTypeDef, PublishInputTypeDef

_SHELF = msgspec.json.Decoder(Shelf)
_NOTIFICATION = msgspec.json.Decoder(Notification)
T = TypeVar("T")


class _Deferred(Exception):
    """The entry is claimed by another process (or the claim was taken over): leave it to that process."""


class SnsNotifier:
    """Publishes alarm transitions exactly once (see the module docstring for the residual window)."""

    def __init__(
        self,
        sns: SNSClient,
        dynamodb: DynamoDBClient,
        *,
        topic_arn: str,
        table: str,
        stream: str,
        metrics: Metrics | None = None,
        state_table: str | None = None,
        give_up_s: float = 300.0,
        backoff_cap_s: float = 10.0,
        claim_ttl_s: float = 30.0,
        claim_margin_s: float = 5.0,
        attempt_s: float = 20.0,
        owner: str = "",
        wall: Callable[[], float] = time.time,
        describe: Callable[[Notification], Readable | None] | None = None,
        health: Health | None = None,
    ) -> None:
        self.sns = sns  # public: swapped in tests to stage an outage
        self._describe = describe  # notification -> texts for people (subject, e-mail, SMS); None: JSON only
        self._ddb = dynamodb
        self._topic = topic_arn
        self._fifo = topic_arn.endswith(".fifo")
        self._table = table
        self._state_table = state_table  # where operators' shelves are kept (None: nothing is ever shelved)
        self._stream = stream
        self._metrics = metrics
        self._give_up_s = give_up_s
        self._cap = backoff_cap_s
        self._ttl_s = claim_ttl_s
        self._margin_s = claim_margin_s
        self._attempt_s = min(attempt_s, max(1.0, (claim_ttl_s - claim_margin_s) / 2))
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self._wall = wall
        self._health = health  # readiness: SNS refusing (it is retried here, under the sink's call)
        self._in_flight: dict[tuple[str, str], asyncio.Task[bool]] = {}
        self._log: Any = get_logger("wenu.alarms.notifier")

    async def record(self, shard_id: str, transitions: Sequence[Transition]) -> list[LedgerEntry]:
        """Write each transition to the ledger as pending unless it is there; return those not yet published."""
        calls = [lambda tr=tr: self._record_one(shard_id, tr) for tr in transitions]
        entries = await bounded(calls, 8)
        return [e for e in entries if e.status == PENDING]

    async def publish(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
        """Settle pending entries (module docstring, step 2); return those left to another process.

        Entries of one series go out in order, one at a time; series go out
        concurrently (at most 8 in flight).

        Raises:
            SinkError: SNS refused for ``give_up_s``; the entries stay pending
                and the caller must not checkpoint.
        """
        by_series: dict[str, list[LedgerEntry]] = {}
        for entry in entries:
            by_series.setdefault(entry.series, []).append(entry)
        groups = await bounded(
            [functools.partial(self._publish_in_order, group) for group in by_series.values()], 8
        )
        return [entry for deferred in groups for entry in deferred]

    async def _publish_in_order(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
        for n, entry in enumerate(entries):
            key = (entry.series, entry.sk)
            task = self._in_flight.get(key)
            if task is None:
                task = self._in_flight[key] = asyncio.ensure_future(self._settle(entry))
                task.add_done_callback(functools.partial(self._forget, key))
            if not await _finished_first(task):
                return list(entries[n:])
        return []

    def _forget(self, key: tuple[str, str], _task: asyncio.Task[bool]) -> None:
        self._in_flight.pop(key, None)

    async def _settle(self, entry: LedgerEntry) -> bool:
        """Claim, then shelve or publish, then mark (step 2); False if another process holds the entry."""
        try:
            valid_until = await self._claim(entry)
            self._log.debug("notification_claimed", transition_id=entry.transition_id, owner=self.owner)
            if valid_until is None:
                return True  # published or shelved already
            shelf = await self._shelf(entry)
            if shelf is not None and covers(shelf, entry.at):
                await self._mark_shelved(entry, shelf)
                return True
            message_id, accepted = await self._publish_with_backoff(entry, valid_until)
            await self._mark_published(entry, message_id)
            if self._metrics is not None:
                self._metrics.notification_mark.observe(time.monotonic() - accepted)
                self._metrics.notifications.labels(
                    entry.attributes["severity"], entry.attributes["state"]
                ).inc()
        except _Deferred:
            return False
        except SinkError:
            await self._unclaim(entry)  # we stop trying: the next owner need not wait for the claim to expire
            raise
        return True

    async def _unclaim(self, entry: LedgerEntry) -> None:
        try:
            await write_if(
                self._ddb.update_item, TableName=self._table, Key=self._key(entry),
                UpdateExpression="REMOVE claimed_by, claimed_until", ConditionExpression="claimed_by = :me",
                ExpressionAttributeValues={":me": {"S": self.owner}},
            )  # fmt: skip
        except (ClientError, BotoCoreError, OSError) as exc:
            self._log.warning(
                "notification_unclaim_failed", transition_id=entry.transition_id, error=repr(exc)
            )

    async def _claim(self, entry: LedgerEntry) -> float | None:
        """Claim the entry (step 2a); the monotonic time until which the claim may be used, None if it is done.

        Raises:
            _Deferred: another process holds a live claim.
        """
        now_ms = int(self._wall() * 1000)
        out = await write_if(
            self._ddb.update_item, TableName=self._table, Key=self._key(entry),
            UpdateExpression="SET claimed_by = :me, claimed_until = :until",
            ConditionExpression="#st = :pending AND (attribute_not_exists(claimed_by) OR claimed_by = :me "
                                "OR claimed_until < :now)",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={":me": {"S": self.owner}, ":pending": {"S": PENDING},
                                       ":now": {"N": str(now_ms)},
                                       ":until": {"N": str(now_ms + int(self._ttl_s * 1000))}},
        )  # fmt: skip
        if not isinstance(out, ConditionFailed):
            return time.monotonic() + self._ttl_s - self._margin_s
        stored = await self._get(entry.series, entry.sk)
        if stored is None or stored.status != PENDING:
            return None
        self._log.info("notification_claimed_elsewhere", transition_id=entry.transition_id, owner=self.owner)
        raise _Deferred

    async def _mark_published(self, entry: LedgerEntry, message_id: str) -> None:
        out = await write_if(
            self._ddb.update_item, TableName=self._table, Key=self._key(entry),
            UpdateExpression="SET #st = :p, published_at = :now, message_id = :m "
                             "REMOVE pending_shard, claimed_by, claimed_until",
            ConditionExpression="claimed_by = :me",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={":p": {"S": PUBLISHED}, ":now": {"N": str(int(self._wall() * 1000))},
                                       ":m": {"S": message_id}, ":me": {"S": self.owner}},
        )  # fmt: skip
        if isinstance(
            out, ConditionFailed
        ):  # our claim expired and was taken over while SNS took the message
            self._log.error(
                "notification_claim_lost",
                transition_id=entry.transition_id,
                owner=self.owner,
                effect="published after the claim expired: the new holder may publish it again",
            )

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
        out = await write_if(
            self._ddb.update_item, TableName=self._table, Key=self._key(entry),
            UpdateExpression="SET #st = :s, shelved_at = :now, shelved_by = :by "
                             "REMOVE pending_shard, claimed_by, claimed_until",
            ConditionExpression="claimed_by = :me",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={":s": {"S": SHELVED}, ":now": {"N": str(int(self._wall() * 1000))},
                                       ":by": {"S": shelf.by}, ":me": {"S": self.owner}},
        )  # fmt: skip
        if isinstance(out, ConditionFailed):
            raise _Deferred
        self._log.info(
            "notification_shelved", transition_id=entry.transition_id, rule=entry.rule, series=entry.series
        )

    async def recover(self, shard_id: str) -> list[LedgerEntry]:
        """Settle every entry a previous owner of the shard left pending; return those another process holds."""
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
        deferred = await self.publish(entries)
        if entries:
            self._log.info(
                "pending_notifications_recovered",
                shard_id=shard_id,
                count=len(entries),
                deferred=len(deferred),
            )
        return deferred

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

    async def _publish_with_backoff(self, entry: LedgerEntry, valid_until: float) -> tuple[str, float]:
        """SNS Publish under the claim (step 2c); the message id and the monotonic time SNS answered.

        Raises:
            _Deferred: the claim was taken over while SNS kept refusing.
            SinkError: SNS refused for ``give_up_s``.
        """
        started = time.monotonic()
        backoff = Backoff(base=0.1, cap=self._cap)
        request = self._request(entry, await self._readable(entry))
        while True:
            if valid_until - time.monotonic() < self._attempt_s:  # the attempt could outlive the claim
                renewed = await self._claim(entry)
                if renewed is None:
                    raise _Deferred  # marked meanwhile: nothing left to do here
                valid_until = renewed
            try:
                async with asyncio.timeout(self._attempt_s):
                    out = await self.sns.publish(**request)
                if self._health is not None:
                    self._health.report("sns Publish", ok=True)
                return str(out["MessageId"]), time.monotonic()
            except (ClientError, BotoCoreError, OSError, TimeoutError) as exc:
                if self._health is not None:
                    self._health.report("sns Publish", ok=False, error=repr(exc))
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

    async def _readable(self, entry: LedgerEntry) -> Readable | None:
        """The texts for people, or None (no describer, or it failed: the JSON body alone still goes out)."""
        if self._describe is None:
            return None
        try:
            note = _NOTIFICATION.decode(entry.body)
            return await asyncio.to_thread(self._describe, note)  # the catalog cache may refresh (I/O)
        except Exception:  # noqa: BLE001 - a text for people never holds a notification back
            self._log.exception("notification_text_failed", transition_id=entry.transition_id)
            return None

    def _request(self, entry: LedgerEntry, readable: Readable | None = None) -> PublishInputTypeDef:
        body = entry.body.decode()
        request: PublishInputTypeDef = {
            "TopicArn": self._topic, "Message": body,
            "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in entry.attributes.items()},
        }  # fmt: skip
        if readable is not None:
            # Per protocol: people get text (e-mail, SMS); every other protocol (SQS, Lambda, HTTP,
            # email-json) gets "default", the JSON body the spec defines.
            request["MessageStructure"] = "json"
            request["Message"] = json.dumps({"default": body, "email": readable.email, "sms": readable.sms})
            request["Subject"] = readable.subject
        if self._fifo:
            request["MessageDeduplicationId"] = entry.transition_id
            request["MessageGroupId"] = entry.series  # order per series
        return request

    def _shard_key(self, shard_id: str) -> str:
        return f"{self._stream}#{shard_id}"

    @staticmethod
    def _key(entry: LedgerEntry) -> dict[str, AttributeValueTypeDef]:
        return {"series": {"S": entry.series}, "sk": {"S": entry.sk}}


async def _finished_first(task: Awaitable[T]) -> T:
    """Await ``task``; if the caller is cancelled meanwhile, let the task finish first, then re-raise.

    A notification being published is never cut between SNS and the ledger by a
    cancellation (a lost lease stops its shard's consumer that way).
    """
    future = asyncio.ensure_future(task)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if not future.done():
            await asyncio.wait([future])
        raise


def _ledger_item(tr: Transition, entry: LedgerEntry, shard_key: str, now_ms: int) -> Item:
    return {
        "series": {"S": tr.series}, "sk": {"S": entry.sk}, "transition_id": {"S": tr.transition_id},
        "rule": {"S": tr.rule}, "company": {"S": tr.company}, "site": {"S": tr.site},
        "severity": {"S": tr.severity}, "from_state": {"S": tr.from_state}, "to_state": {"S": tr.to_state},
        "value": {"NULL": True} if tr.value is None else {"N": repr(tr.value)},
        "at": {"N": str(tr.at)}, "onset": {"N": str(tr.onset)}, "body": {"B": entry.body},
        "attributes": {"M": {k: {"S": v} for k, v in entry.attributes.items()}},
        "status": {"S": PENDING}, "pending_shard": {"S": shard_key}, "recorded_at": {"N": str(now_ms)},
    }  # fmt: skip


async def resolve_topic_arn(sns: SNSClient, topic_arn: str, topic_name: str) -> str:
    """Return the configured ARN, or find the topic named ``topic_name`` (ARNs are read, never built).

    Raises:
        SinkError: no topic of that name; run ``wenu-stream provision``.
    """
    if topic_arn:
        return topic_arn
    request: ListTopicsInputTypeDef = {}
    while True:
        page = await sns.list_topics(**request)
        for topic in page.get("Topics", []):
            if topic["TopicArn"].rsplit(":", 1)[-1] == topic_name:
                return str(topic["TopicArn"])
        if not page.get("NextToken"):
            raise SinkError(
                f"no SNS topic named {topic_name!r}; run `wenu-stream provision` or set WENU_ALARMS_TOPIC_ARN"
            )
        request["NextToken"] = page["NextToken"]
