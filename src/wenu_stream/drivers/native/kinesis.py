"""Kinesis for the native driver: GetRecords without botocore's parser, control-plane calls through aiobotocore.

GetRecords is the hot path. botocore spends about 20 us per record parsing its
response into dicts; here the request goes through the shared signed transport
(``aws.signed``: SigV4 by hand, aiohttp; the credentials, endpoint and region
come from the same SDK session, so ``AWS_ENDPOINT_URL_KINESIS`` /
``AWS_ENDPOINT_URL`` and the region work the SDK way), and the body is decoded
by msgspec straight into ``list[KinesisRecord]`` (``Data`` base64 -> bytes
natively). Error bodies (``__type``) are mapped to the exceptions below.
ListShards and GetShardIterator are rare and go through an aiobotocore client.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgspec
from botocore.exceptions import ClientError

from wenu_stream.aws.common import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, error_code, error_message
from wenu_stream.aws.deadlines import CallTimeout, Deadlines
from wenu_stream.aws.signed import JsonTransport, TransportError
from wenu_stream.errors import WenuError
from wenu_stream.model import KinesisRecord

if TYPE_CHECKING:
    from aiobotocore.session import AioSession
    from types_aiobotocore_kinesis.client import KinesisClient
    from types_aiobotocore_kinesis.literals import ShardIteratorTypeType
    from types_aiobotocore_kinesis.type_defs import (
        GetShardIteratorInputTypeDef,
        ListShardsInputTypeDef,
        ShardTypeDef,
    )

_TARGET = "Kinesis_20131202."
_CONTENT_TYPE = "application/x-amz-json-1.1"
_THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "KMSThrottlingException",
        "RequestLimitExceeded",
    }
)
_TRANSIENT = frozenset(
    {
        "InternalFailure",
        "InternalFailureException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "RequestTimeout",
    }
)


class KinesisError(WenuError):
    """A Kinesis call failed for a reason retrying will not fix (``code`` is the service's error type)."""

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        super().__init__(f"{code}: {message}" if message else code)


class ExpiredIteratorError(KinesisError):
    """The shard iterator expired (5 minutes): get a new one from the last position handed over."""


class RetryableError(KinesisError):
    """Throttling, a 5xx or a broken connection: back off with full jitter and try again."""

    @property
    def kind(self) -> str:
        """``throttled`` (the shard's or the account's read limits) or ``transient`` (5xx, connection)."""
        return "throttled" if self.code in _THROTTLED else "transient"


class HashKeyRange(msgspec.Struct, rename="pascal", frozen=True):
    starting_hash_key: str
    ending_hash_key: str


class ChildShard(msgspec.Struct, rename="pascal", frozen=True):
    shard_id: str
    parent_shards: list[str] = []
    hash_key_range: HashKeyRange | None = None


class GetRecordsOutput(msgspec.Struct, rename="pascal", frozen=True):
    """A GetRecords response. ``next_shard_iterator`` None: the shard is closed and fully read."""

    records: list[KinesisRecord] = []
    next_shard_iterator: str | None = None
    millis_behind_latest: int | None = None
    child_shards: list[ChildShard] | None = None


class _ErrorBody(msgspec.Struct):
    type_: str = msgspec.field(name="__type", default="")
    message: str = ""
    Message: str = ""


class Shard(msgspec.Struct, frozen=True, kw_only=True):
    """One shard as ListShards describes it. ``ending_sequence_number`` None: the shard is open."""

    shard_id: str
    parent_shard_id: str | None = None
    adjacent_parent_shard_id: str | None = None
    starting_hash_key: str = ""
    ending_hash_key: str = ""
    ending_sequence_number: str | None = None

    @property
    def parents(self) -> list[str]:
        return [p for p in (self.parent_shard_id, self.adjacent_parent_shard_id) if p]


decode_get_records = msgspec.json.Decoder(GetRecordsOutput).decode
_decode_error = msgspec.json.Decoder(_ErrorBody).decode
_encode = msgspec.json.encode


def error_from_body(status: int, body: bytes, header_type: str | None = None) -> KinesisError:
    """Map an error response (``{"__type": ..., "message": ...}``) to a ``KinesisError`` subclass."""
    try:
        parsed = _decode_error(body)
        code, message = parsed.type_ or header_type or "", parsed.message or parsed.Message
    except msgspec.DecodeError:
        code, message = header_type or "", body[:200].decode("utf-8", "replace")
    code = code.rpartition("#")[2].partition(":")[0] or f"HTTP{status}"
    return classify(code, message, status)


def classify(code: str, message: str = "", status: int = 400) -> KinesisError:
    """The exception class for a service error code."""
    if code == "ExpiredIteratorException":
        return ExpiredIteratorError(code, message)
    if code in _THROTTLED or code in _TRANSIENT or status >= 500:
        return RetryableError(code, message)
    return KinesisError(code, message)


def from_client_error(exc: ClientError) -> KinesisError:
    """Map a botocore ``ClientError`` (control-plane calls) to the same exceptions."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
    return classify(error_code(exc), error_message(exc), int(status or 400))


class FastGetRecords:
    """Signed GetRecords (``aws.signed``) decoded by msgspec. One instance serves every shard of a worker."""

    def __init__(self, transport: JsonTransport, deadlines: Deadlines | None = None) -> None:
        self.transport = transport
        self.endpoint = transport.endpoint
        self.region = transport.region
        self._deadlines = deadlines or Deadlines()

    @classmethod
    async def open(
        cls,
        session: AioSession,
        client: KinesisClient,
        *,
        deadlines: Deadlines | None = None,
        connect_s: float = CONNECT_TIMEOUT_S,
        read_s: float = READ_TIMEOUT_S,
    ) -> FastGetRecords:
        """Build from an aiobotocore session and one of its Kinesis clients (endpoint and region resolved by the SDK).

        Each GetRecords is bounded by ``deadlines`` (and ``connect_s``/``read_s`` per exchange).
        """
        try:
            transport = await JsonTransport.open(
                session,
                client,
                service="kinesis",
                target_prefix=_TARGET,
                content_type=_CONTENT_TYPE,
                connect_s=connect_s,
                read_s=read_s,
            )
        except WenuError as exc:
            raise KinesisError("NoCredentials", str(exc)) from exc
        return cls(transport, deadlines)

    async def close(self) -> None:
        await self.transport.close()

    async def get_records(self, iterator: str, limit: int = 10_000) -> GetRecordsOutput:
        """One GetRecords call.

        Raises:
            ExpiredIteratorError: get a new iterator.
            RetryableError: throttled, 5xx or connection trouble; back off and retry.
            KinesisError: anything else (a bug, a missing stream, no permission).
        """
        body = _encode({"ShardIterator": iterator, "Limit": limit})
        try:
            status, payload, header_type = await self._deadlines.run(
                "kinesis", "GetRecords", lambda: self.transport.post("GetRecords", body)
            )
        except TransportError as exc:
            raise RetryableError("ConnectionError", str(exc)) from exc
        except CallTimeout as exc:
            raise RetryableError("Timeout", str(exc)) from exc
        if status != 200:
            raise error_from_body(status, payload, header_type)
        return decode_get_records(payload)


async def list_shards(client: KinesisClient, stream: str) -> list[Shard]:
    """Every shard of ``stream`` (open and closed), following ``NextToken`` AWS-style."""
    shards: list[Shard] = []
    request: ListShardsInputTypeDef = {"StreamName": stream}
    while True:
        try:
            page = await client.list_shards(**request)
        except ClientError as exc:
            raise from_client_error(exc) from exc
        shards.extend(_shard(s) for s in page.get("Shards", []))
        token = page.get("NextToken")
        if not token:
            return shards
        request = {"NextToken": token}  # AWS rejects StreamName together with NextToken


def _shard(raw: ShardTypeDef) -> Shard:
    hashes = raw.get("HashKeyRange", {})
    return Shard(
        shard_id=raw["ShardId"],
        parent_shard_id=raw.get("ParentShardId"),
        adjacent_parent_shard_id=raw.get("AdjacentParentShardId"),
        starting_hash_key=hashes.get("StartingHashKey", ""),
        ending_hash_key=hashes.get("EndingHashKey", ""),
        ending_sequence_number=raw.get("SequenceNumberRange", {}).get("EndingSequenceNumber"),
    )


async def get_shard_iterator(
    client: KinesisClient,
    stream: str,
    shard_id: str,
    kind: ShardIteratorTypeType,
    sequence: str | None = None,
) -> str:
    """A shard iterator of ``kind`` (TRIM_HORIZON, LATEST, AT_/AFTER_SEQUENCE_NUMBER)."""
    request: GetShardIteratorInputTypeDef = {
        "StreamName": stream,
        "ShardId": shard_id,
        "ShardIteratorType": kind,
    }
    if sequence is not None:
        request["StartingSequenceNumber"] = sequence
    try:
        out = await client.get_shard_iterator(**request)
    except ClientError as exc:
        raise from_client_error(exc) from exc
    return str(out["ShardIterator"])


def open_shards(shards: Iterable[Shard]) -> list[Shard]:
    """Shards still taking writes (client-side: kinesalite ignores ``ShardFilter``)."""
    return [s for s in shards if s.ending_sequence_number is None]
