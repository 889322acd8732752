"""DynamoDB's per-commit calls through the signed transport (``aws.signed``); every other call through the SDK.

:class:`FastDynamoDB` stands in for an aiobotocore DynamoDB client: ``put_item``,
``update_item``, ``get_item``, ``delete_item``, ``batch_get_item`` and
``batch_write_item`` are posted by hand (msgspec JSON; binary attributes base64
on the wire, bytes in Python, as botocore gives them), and any other attribute
(``query``, ``get_paginator``, ``meta``...) is the SDK client's. Through the SDK
one of these calls costs about 2.8 ms of CPU; here about a fifth of it.

It behaves like the SDK client for its callers (the adapters and ``aws.common``):
a service error raises botocore's ``ClientError`` with the same ``response``
(``Error.Code``, ``Error.Message``, ``ResponseMetadata.HTTPStatusCode`` and, for
a failed condition with ``ReturnValuesOnConditionCheckFailure``, ``Item``), and
it retries what botocore's standard mode retries (throttling, 5xx, connection
errors: ``aws.common.RETRY_ATTEMPTS`` attempts with the project's full-jitter
``Backoff``), the whole call under ``aws.deadlines``. It does no parameter
validation: the adapters build the requests.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import msgspec
from botocore.exceptions import ClientError

from wenu_stream.aws.common import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, RETRY_ATTEMPTS, THROTTLED
from wenu_stream.aws.deadlines import Deadlines
from wenu_stream.aws.signed import JsonTransport, TransportError
from wenu_stream.backoff import Backoff

if TYPE_CHECKING:
    from aiobotocore.session import AioSession
    from types_aiobotocore_dynamodb.client import DynamoDBClient

_TARGET = "DynamoDB_20120810."
_CONTENT_TYPE = "application/x-amz-json-1.0"
_RETRYABLE = THROTTLED | {"ServiceUnavailable", "InternalFailure", "TransactionInProgressException"}
_OPERATIONS = {
    "put_item": "PutItem",
    "update_item": "UpdateItem",
    "get_item": "GetItem",
    "delete_item": "DeleteItem",
    "batch_get_item": "BatchGetItem",
    "batch_write_item": "BatchWriteItem",
}
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def _value(v: dict[str, Any]) -> dict[str, Any]:
    """One attribute value as botocore returns it (``B``/``BS`` as bytes, maps and lists converted inside)."""
    if "B" in v:
        return {"B": base64.b64decode(v["B"])}
    if "M" in v:
        return {"M": _item(v["M"])}
    if "L" in v:
        return {"L": [_value(x) for x in v["L"]]}
    if "BS" in v:
        return {"BS": [base64.b64decode(x) for x in v["BS"]]}
    return v


def _item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _value(v) for k, v in item.items()}


def _response(out: dict[str, Any]) -> dict[str, Any]:
    """Convert the attribute values of a response (items, keys) the way botocore's parser does."""
    for name in ("Item", "Attributes", "LastEvaluatedKey"):
        if name in out:
            out[name] = _item(out[name])
    if "Responses" in out:
        out["Responses"] = {t: [_item(i) for i in items] for t, items in out["Responses"].items()}
    if "UnprocessedKeys" in out:
        for request in out["UnprocessedKeys"].values():
            request["Keys"] = [_item(k) for k in request.get("Keys", [])]
    if "UnprocessedItems" in out:
        for requests in out["UnprocessedItems"].values():
            for r in requests:
                for kind, field in (("PutRequest", "Item"), ("DeleteRequest", "Key")):
                    if kind in r:
                        r[kind][field] = _item(r[kind][field])
    return out


def client_error(status: int, payload: bytes, header_type: str | None, operation: str) -> ClientError:
    """botocore's ``ClientError`` for an error answer (``{"__type": "...#Code", "message": ...}``)."""
    try:
        body = _decode(payload) if payload else {}
    except msgspec.DecodeError:
        body = {"message": payload[:300].decode("utf-8", "replace")}
    code = (
        str(body.get("__type") or header_type or "").rpartition("#")[2].partition(":")[0] or f"HTTP{status}"
    )
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": str(body.get("message") or body.get("Message") or "")},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    if "Item" in body:
        response["Item"] = _item(body["Item"])
    return ClientError(response, operation)  # type: ignore[arg-type]


class FastDynamoDB:
    """A DynamoDB client whose hot operations skip botocore; build with :meth:`open`, ``close`` when done."""

    def __init__(
        self,
        transport: JsonTransport,
        sdk: DynamoDBClient,
        *,
        attempts: int = RETRY_ATTEMPTS,
        deadlines: Deadlines | None = None,
    ) -> None:
        self.transport = transport
        self._sdk = sdk
        self._attempts = attempts
        self._deadlines = deadlines or Deadlines()

    @classmethod
    async def open(
        cls,
        session: AioSession,
        client: DynamoDBClient,
        *,
        deadlines: Deadlines | None = None,
        connect_s: float = CONNECT_TIMEOUT_S,
        read_s: float = READ_TIMEOUT_S,
    ) -> FastDynamoDB:
        """From an aiobotocore session and its DynamoDB client (endpoint, region, credentials: the SDK's)."""
        transport = await JsonTransport.open(
            session,
            client,
            service="dynamodb",
            target_prefix=_TARGET,
            content_type=_CONTENT_TYPE,
            connect_s=connect_s,
            read_s=read_s,
        )
        return cls(transport, client, deadlines=deadlines)

    async def close(self) -> None:
        await self.transport.close()

    def __getattr__(self, name: str) -> Any:
        operation = _OPERATIONS.get(name)
        if operation is None:
            return getattr(self._sdk, name)  # the SDK's own: query, get_paginator, meta, ...

        async def call(**args: Any) -> dict[str, Any]:
            return await self.call(operation, args)

        return call

    async def call(self, operation: str, args: dict[str, Any]) -> dict[str, Any]:
        """Post one operation, retrying what botocore's standard mode retries; raise ``ClientError`` otherwise.

        Raises:
            CallTimeout: no answer within the overall deadline (retries included).
        """
        return await self._deadlines.run("dynamodb", operation, lambda: self._call(operation, args))

    async def _call(self, operation: str, args: dict[str, Any]) -> dict[str, Any]:
        body = _encode(args)
        backoff = Backoff(base=0.05, cap=2.0)
        for attempt in range(1, self._attempts + 1):
            try:
                status, payload, header_type = await self.transport.post(operation, body)
            except TransportError:
                if attempt == self._attempts:
                    raise
                await backoff.sleep()
                continue
            if status == 200:
                return _response(_decode(payload))
            error = client_error(status, payload, header_type, operation)
            code = error.response["Error"]["Code"]
            if attempt == self._attempts or not (status >= 500 or code in _RETRYABLE):
                raise error
            await backoff.sleep()
        raise AssertionError("unreachable")
