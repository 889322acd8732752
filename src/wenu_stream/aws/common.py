"""AWS plumbing shared by the adapters: client settings, error codes, pagination, batched reads, conditional writes.

Every SDK client of the stream path is made with :func:`client_config`: botocore's
standard retry mode (throttling, 5xx and connection errors, with its own jittered
backoff) and deadlines on connect and read, so a black-holed endpoint fails a call
instead of hanging a shard. What sits above botocore's retries is written down once
in ``wenu_stream.backoff``.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import aiohttp
import msgspec
from botocore.exceptions import BotoCoreError, ClientError

from wenu_stream.aws.signed import TransportError
from wenu_stream.backoff import Backoff
from wenu_stream.errors import SinkError
from wenu_stream.ingest.failures import Failure, default_classify
from wenu_stream.tasks import bounded

if TYPE_CHECKING:
    from aiobotocore.config import AioConfig
    from botocore.config import Config as BotoConfig
    from types_aiobotocore_dynamodb.type_defs import AttributeValueTypeDef

Item = dict[str, "AttributeValueTypeDef"]  # a DynamoDB item in the low-level format ({"name": {"S": "..."}})
P = ParamSpec("P")
R = TypeVar("R")
Page = Mapping[str, Any]  # a Query or Scan answer (Items, LastEvaluatedKey)

CONDITION_FAILED = "ConditionalCheckFailedException"
# DynamoDB answers that mean "slow down", not "this request is wrong".
THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
    }
)
BATCH_GET_LIMIT = 100  # keys per BatchGetItem request
RETRY_ATTEMPTS = 5  # botocore's attempts per call (the first one included)
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0


def client_config(connect_s: float = CONNECT_TIMEOUT_S, read_s: float = READ_TIMEOUT_S) -> AioConfig:
    """Settings of every aiobotocore client on the stream path (retry mode and per-attempt deadlines).

    The whole call's deadline is ``aws.deadlines``'.
    """
    from aiobotocore.config import AioConfig  # here: only those who make clients pay for the import

    return AioConfig(**_settings(connect_s, read_s))


def sync_client_config(connect_s: float = CONNECT_TIMEOUT_S, read_s: float = READ_TIMEOUT_S) -> BotoConfig:
    """The same settings for a boto3 client (the API service, the key ring's KMS calls, the operator commands)."""
    from botocore.config import Config as BotoConfig

    return BotoConfig(**_settings(connect_s, read_s))


def _settings(connect_s: float, read_s: float) -> dict[str, Any]:
    return {
        "retries": {"mode": "standard", "total_max_attempts": RETRY_ATTEMPTS},
        "connect_timeout": connect_s,
        "read_timeout": read_s,
    }


def error_code(exc: BaseException) -> str:
    """The AWS error code of an SDK exception (``""`` for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def error_message(exc: BaseException) -> str:
    """The AWS error message of an SDK exception (``""`` for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Message", ""))


def is_conditional_failure(exc: BaseException) -> bool:
    """True if a conditional write was refused because its condition was false."""
    return error_code(exc) == CONDITION_FAILED


class ConditionFailed(msgspec.Struct, frozen=True):
    """A conditional write that was not applied; ``item`` is what the condition saw.

    ``item`` holds the stored attributes when the request asked for
    ``ReturnValuesOnConditionCheckFailure="ALL_OLD"`` and an item existed, else ``{}``.
    """

    item: Item


async def write_if(
    call: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
) -> R | ConditionFailed:
    """Run a conditional write (PutItem, UpdateItem, DeleteItem); a false condition is a value.

    The request is checked against ``call``'s signature (the SDK stubs' request types).

    Returns:
        The response if the write was applied, else :class:`ConditionFailed`.
    """
    try:
        return await call(*args, **kwargs)
    except Exception as exc:
        if not is_conditional_failure(exc):
            raise
        item = getattr(exc, "response", {}).get("Item")  # present only with ALL_OLD
        return ConditionFailed(item if isinstance(item, dict) else {})


async def paginate(
    call: Callable[P, Awaitable[Page]], /, *args: P.args, **kwargs: P.kwargs
) -> AsyncIterator[Item]:
    """Every item of a Query or Scan, page after page (``LastEvaluatedKey`` -> ``ExclusiveStartKey``).

    The first request is checked against ``call``'s signature; the next ones add only ``ExclusiveStartKey``.
    """
    page = await call(*args, **kwargs)
    more = cast("Callable[..., Awaitable[Page]]", call)
    while True:
        for item in page.get("Items", []):
            yield item
        if "LastEvaluatedKey" not in page:
            return
        page = await more(*args, **(dict(kwargs) | {"ExclusiveStartKey": page["LastEvaluatedKey"]}))


def paginate_sync(call: Callable[P, Page], /, *args: P.args, **kwargs: P.kwargs) -> Iterator[Item]:
    """:func:`paginate` for a boto3 client."""
    page = call(*args, **kwargs)
    more = cast("Callable[..., Page]", call)
    while True:
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        page = more(*args, **(dict(kwargs) | {"ExclusiveStartKey": page["LastEvaluatedKey"]}))


async def batch_get(
    call: Callable[..., Awaitable[Any]],
    table: str,
    keys: Sequence[Item],
    *,
    concurrency: int = 16,
    attempts: int = 12,
) -> list[Item]:
    """Read the items of ``keys`` (consistent reads; missing ones are absent from the result, in no order).

    Keys go in requests of 100 (repeats dropped: DynamoDB refuses a request that
    names a key twice), ``concurrency`` requests at a time. Unprocessed keys are
    asked again after a :class:`~wenu_stream.backoff.Backoff` delay.

    Args:
        call: the client's ``batch_get_item`` (or a wrapper with its signature).

    Raises:
        SinkError: keys still unprocessed after ``attempts`` requests.
    """
    unique = list({_hashable(k): k for k in keys}.values())
    chunks = [unique[i : i + BATCH_GET_LIMIT] for i in range(0, len(unique), BATCH_GET_LIMIT)]
    get = functools.partial(_batch_get_chunk, call, table, attempts=attempts)
    pages = await bounded([functools.partial(get, chunk) for chunk in chunks], concurrency)
    return [item for page in pages for item in page]


async def _batch_get_chunk(
    call: Callable[..., Awaitable[Any]], table: str, keys: list[Item], *, attempts: int
) -> list[Item]:
    found: list[Item] = []
    request: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
    backoff = Backoff(base=0.05, cap=2.0)
    for _ in range(attempts):
        out = await call(RequestItems=request)
        found.extend(out.get("Responses", {}).get(table, []))
        request = out.get("UnprocessedKeys") or {}
        if not request:
            return found
        await backoff.sleep()  # throttled: back off, then ask for the rest
    raise SinkError(f"BatchGetItem on {table} kept returning unprocessed keys after {attempts} requests")


def _hashable(key: Item) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    return tuple(sorted((name, tuple(value.items())) for name, value in key.items()))


# Answers about the data itself (retrying cannot help): the processor bisects the batch and dead-letters
# what is refused as ``sink_rejected`` (``ingest.failures``). Every other answer, 4xx included (access
# denied, a missing table, an expired token), is about the service or the setup: retried until it heals.
REFUSALS = frozenset(
    {
        "ValidationException",  # DynamoDB: a number out of range, an item over 400 KB, an empty key ...
        "ItemCollectionSizeLimitExceededException",
        "InvalidParameter",  # SNS: a message over 256 KB, a bad attribute
        "InvalidParameterValue",
        "InvalidParameterException",
        "InvalidParameterValueException",
        "EntityTooLarge",  # S3
        "KeyTooLongError",
    }
)


def classify(exc: BaseException) -> Failure:
    """The class of a sink's failure (``ingest.failures``): transient, rejected (about the data), or a bug."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in REFUSALS:
            return Failure.REJECTED
        return Failure.BUG if code == CONDITION_FAILED else Failure.TRANSIENT
    if isinstance(exc, BotoCoreError | aiohttp.ClientError | TransportError):
        return Failure.TRANSIENT
    return default_classify(exc)
