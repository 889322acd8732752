"""The edge of ``simulate``: put produced records into Kinesis with PutRecords, paced or as fast as possible.

One thread puts, one batch at a time: emulators lose acknowledged records under
concurrent PutRecords, and one ordered writer keeps a device's records in order.
Only the entries that failed (``FailedRecordCount``) are retried, with
exponential backoff and full jitter. The client is built by boto3 from the
SDK's own settings (``AWS_ENDPOINT_URL*``, ``AWS_REGION``).

Like the KPL, the producer packs aggregates with the shard map it read at the
start; after a reshard an aggregate may land on a shard that does not hold all
its records. Consumers drop such an aggregate (``ingest.batch``), and, like the
KPL's "Wrong Shard" retry, the producer puts its records again, packed by the
shards of now (``PutStats.rerouted``).
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Final

import msgspec

from wenu_stream.aws.common import error_code
from wenu_stream.backoff import Backoff
from wenu_stream.devtools.simulate.generator import ProducedRecord, shard_of
from wenu_stream.devtools.simulate.outcomes import Tally
from wenu_stream.errors import ConfigError, WenuError
from wenu_stream.records.encoding import aggregate
from wenu_stream.records.kpl import deaggregate, is_aggregate, outside

if TYPE_CHECKING:
    from mypy_boto3_kinesis.client import KinesisClient
    from mypy_boto3_kinesis.type_defs import ListShardsInputTypeDef, PutRecordsRequestEntryTypeDef

MAX_BATCH_RECORDS: Final = 500
MAX_BATCH_BYTES: Final = 5 * 1024 * 1024  # data + partition keys of one PutRecords request
REROUTE_PER_AGGREGATE: Final = 10  # user records per aggregate put again after a wrong-shard landing
_RETRYABLE: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "InternalFailure",
        "ServiceUnavailable",
        "KMSThrottlingException",
    }
)


class ProducerError(WenuError):
    """Records could not be put after every attempt; the run stops."""


class PutStats(msgspec.Struct, kw_only=True):
    """What the producer did: records put, PutRecords calls, entries retried."""

    records_put: int = 0
    batches: int = 0
    calls: int = 0
    retried: int = 0
    rerouted: int = 0  # user records of aggregates that landed on another shard, put again (a reshard)


class Pacer:
    """When each record is due, on a ``time.monotonic``-like clock.

    Modes: ``none`` (everything due now), ``relative`` (simulated time from
    ``start_ms`` runs ``rate`` times faster than the wall clock) and
    ``absolute`` (a record is due at its own epoch time, so a past start is
    sent at once and the run then follows real time).
    """

    def __init__(
        self,
        mode: str,
        *,
        start_ms: int = 0,
        rate: float = 1.0,
        now: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.mode, self.now = mode, now
        self.rate = rate if mode == "relative" else 1.0
        self._origin = now()
        self._offset_ms = start_ms if mode == "relative" else wall() * 1000

    def due(self, emit_ms: int) -> float:
        """The monotonic time at which a record emitted at ``emit_ms`` should leave."""
        if self.mode == "none":
            return float("-inf")
        return self._origin + (emit_ms - self._offset_ms) / 1000 / self.rate


class KinesisProducer:
    """Puts records into one stream through a boto3 Kinesis client."""

    def __init__(
        self,
        stream: str,
        client: KinesisClient | None = None,
        *,
        max_attempts: int = 10,
        base_s: float = 0.05,
        cap_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("kinesis")
        self.stream, self.client, self.sleep = stream, client, sleep
        self.max_attempts, self.base_s, self.cap_s = max_attempts, base_s, cap_s
        self.rng = rng or random.Random()
        self.stats = PutStats()

    def open_shard_ranges(self) -> tuple[tuple[int, int], ...]:
        """Hash-key ranges of the open shards (closed ones are filtered here: emulators ignore ShardFilter)."""
        ranges: list[tuple[int, int]] = []
        kwargs: ListShardsInputTypeDef = {"StreamName": self.stream}
        while True:
            page = self.client.list_shards(**kwargs)
            for shard in page["Shards"]:
                if "EndingSequenceNumber" not in shard.get("SequenceNumberRange", {}):
                    r = shard["HashKeyRange"]
                    ranges.append((int(r["StartingHashKey"]), int(r["EndingHashKey"])))
            if not page.get("NextToken"):
                return tuple(sorted(ranges))
            kwargs = {"NextToken": page["NextToken"]}

    def check_stream(self) -> None:
        """Fail before any put when the stream does not exist or is not writable yet.

        Raises:
            ConfigError: naming ``--stream`` and the fix.
        """
        from botocore.exceptions import ClientError

        try:
            summary = self.client.describe_stream_summary(StreamName=self.stream)["StreamDescriptionSummary"]
        except ClientError as exc:
            code = error_code(exc)
            raise ConfigError(
                "--stream",
                f"stream {self.stream!r}: {code or exc}",
                "create it first (`wenu-stream provision`) or name an existing stream",
            ) from None
        if summary["StreamStatus"] not in ("ACTIVE", "UPDATING"):
            raise ConfigError(
                "--stream", f"stream {self.stream!r} is {summary['StreamStatus']}", "wait until it is ACTIVE"
            )

    def put(self, entries: list[PutRecordsRequestEntryTypeDef]) -> None:
        """Put one batch; retry only the failed entries until all are in.

        Raises:
            ProducerError: entries still failing after ``max_attempts`` calls.
        """
        pending = entries
        backoff = Backoff(self.base_s, self.cap_s, self.rng)
        landed: list[tuple[PutRecordsRequestEntryTypeDef, str]] = []
        for attempt in range(self.max_attempts):
            if attempt:
                self.sleep(backoff.next_delay())
                self.stats.retried += len(pending)
            pending = self._call(pending, landed)
            if not pending:
                self.stats.batches += 1
                self.stats.records_put += len(entries)
                self._reroute(landed)
                return
        raise ProducerError(
            f"{len(pending)} records not put into {self.stream!r} after {self.max_attempts} attempts"
        )

    def _reroute(self, landed: list[tuple[PutRecordsRequestEntryTypeDef, str]]) -> None:
        """Put again, packed by the shards of now, the user records of aggregates that landed on a shard whose
        range does not hold them all: the KPL's "Wrong Shard" retry after a reshard (consumers drop such an
        aggregate whole, ``ingest.batch``). The KPL retries every record of an aggregate that missed its
        predicted shard; here only those that consumers drop (a repeat of kept ones would be a duplicate)."""
        if not any(is_aggregate(entry["Data"]) for entry, _ in landed):  # type: ignore[arg-type]
            return
        ranges = self._shard_ranges()
        users: list[tuple[str, bytes]] = []
        for entry, shard_id in landed:
            data = bytes(entry["Data"])  # type: ignore[arg-type]
            if shard_id not in ranges:
                ranges = self._shard_ranges()
            if is_aggregate(data) and outside(data, *ranges[shard_id]):
                users += deaggregate(data, entry["PartitionKey"])
        if not users:
            return
        self.stats.rerouted += len(users)
        current = self.open_shard_ranges()
        by_shard: dict[int | str, list[tuple[str, bytes]]] = {}
        for key, data in users:
            by_shard.setdefault(shard_of(key, current), []).append((key, data))
        again: list[PutRecordsRequestEntryTypeDef] = []
        for group in by_shard.values():
            for first in range(0, len(group), REROUTE_PER_AGGREGATE):
                chunk = group[first : first + REROUTE_PER_AGGREGATE]
                data = aggregate(chunk) if len(chunk) > 1 else chunk[0][1]
                again.append({"Data": data, "PartitionKey": chunk[0][0]})
        for first in range(0, len(again), MAX_BATCH_RECORDS):
            self.put(again[first : first + MAX_BATCH_RECORDS])

    def _shard_ranges(self) -> dict[str, tuple[int, int]]:
        """Every shard's hash-key range, by shard id (closed shards too)."""
        ranges: dict[str, tuple[int, int]] = {}
        kwargs: ListShardsInputTypeDef = {"StreamName": self.stream}
        while True:
            page = self.client.list_shards(**kwargs)
            for shard in page["Shards"]:
                r = shard["HashKeyRange"]
                ranges[shard["ShardId"]] = (int(r["StartingHashKey"]), int(r["EndingHashKey"]))
            if not page.get("NextToken"):
                return ranges
            kwargs = {"NextToken": page["NextToken"]}

    def _call(
        self,
        entries: list[PutRecordsRequestEntryTypeDef],
        landed: list[tuple[PutRecordsRequestEntryTypeDef, str]] | None = None,
    ) -> list[PutRecordsRequestEntryTypeDef]:
        from botocore.exceptions import ClientError

        self.stats.calls += 1
        try:
            response = self.client.put_records(StreamName=self.stream, Records=entries)
        except ClientError as exc:
            if error_code(exc) in _RETRYABLE:
                return entries
            raise
        results = list(zip(entries, response["Records"], strict=True))
        if landed is not None:
            landed += [(entry, result["ShardId"]) for entry, result in results if "ErrorCode" not in result]
        return [entry for entry, result in results if "ErrorCode" in result]


def entry(record: ProducedRecord) -> PutRecordsRequestEntryTypeDef:
    """The PutRecords entry of a record."""
    return {"Data": record.data, "PartitionKey": record.partition_key}


def put_all(
    records: Iterable[ProducedRecord],
    send: Callable[[list[PutRecordsRequestEntryTypeDef]], None],
    pacer: Pacer,
    *,
    tally: Tally | None = None,
    linger_s: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Group records into PutRecords batches (500 records, 5 MiB) and send them when due.

    A batch gathers records due within ``linger_s`` of its first one, waits until
    its last one is due, then goes: records leave at most ``linger_s`` late and
    never early.
    """
    batch: list[PutRecordsRequestEntryTypeDef] = []
    size, first_due, last_due = 0, 0.0, 0.0

    def flush() -> None:
        wait = last_due - pacer.now()
        if wait > 0:
            sleep(wait)
        send(batch)

    for record in records:
        due, cost = pacer.due(record.emit_ms), len(record.data) + len(record.partition_key.encode())
        if batch and (
            due > first_due + linger_s or len(batch) == MAX_BATCH_RECORDS or size + cost > MAX_BATCH_BYTES
        ):
            flush()
            batch, size = [], 0
        if not batch:
            first_due = last_due = max(due, pacer.now())  # overdue records all join the first batch
        batch.append(entry(record))
        size, last_due = size + cost, max(last_due, due)
        if tally is not None:
            tally.add(record)
    if batch:
        flush()


def write_lines(records: Iterable[ProducedRecord], out: IO[str], tally: Tally | None = None) -> None:
    """``--dry-run``: write one JSON line ``{"partition_key", "data_b64"}`` per record to ``out``."""
    for record in records:
        out.write(
            json.dumps(
                {
                    "partition_key": record.partition_key,
                    "data_b64": base64.b64encode(record.data).decode("ascii"),
                }
            )
            + "\n"
        )
        if tally is not None:
            tally.add(record)
