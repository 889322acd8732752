"""An overall deadline on every AWS call of the workers, and the calls in flight for readiness.

botocore bounds each attempt of a call (``connect_timeout``, ``read_timeout``:
``aws.common.client_config``) and retries it, but nothing bounds the call as a
whole: the read deadline restarts with every byte that arrives, and a call
retried five times against a black hole waits five read deadlines. Above the
SDK the processor retries the whole sink call again. :meth:`Deadlines.run`
bounds one call, its retries included, by ``aws.call_deadline_s``:

- while it runs, the call is registered in ``health.Calls`` (readiness reports
  a call in flight for longer than ``aws.stall_s``);
- past ``aws.stall_s`` a warning ``call_stalled`` names the service and
  operation (once per call), past the deadline ``call_timed_out`` does, and the
  call raises :class:`CallTimeout`, a ``TimeoutError`` (an ``OSError``): the
  retry layers above (``wenu_stream.backoff``) treat it as a connection error.

:class:`DeadlineClient` puts an aiobotocore client's operations under it; the
signed transport's callers (``aws.fast_dynamodb``, the native Kinesis reader)
call :meth:`Deadlines.run` themselves. A paginator's pages (``get_paginator(...)
.paginate(...)`` iterated with ``async for``) are each one call under it.

What botocore does with ``Expect: 100-continue``: every S3 PutObject body
becomes a file object (``botocore.handlers.convert_body_to_file_like_object``,
``bytes`` too), and every PUT/POST with a file-object body gets the header
(``add_expect_header``). aiohttp (3.14) sends the headers, waits for the
interim ``100 Continue`` and only then writes the body, and it starts the read
deadline (``sock_read``, botocore's ``read_timeout``) once the body is written
(``ClientRequest.write_bytes``): a server that never answers the headers keeps
the upload waiting forever, whatever ``read_timeout`` says (the issue's 6 and
14 minutes ended with the fault). Only the overall deadline ends it
(``tests/integration/test_call_deadlines.py``; a held PutObject with
``read_timeout=1`` and one attempt, without it, was still waiting after 60 s).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from wenu_stream.health import Calls
from wenu_stream.log import get_logger

T = TypeVar("T")
C = TypeVar("C")

CALL_DEADLINE_S = 60.0
STALL_S = 10.0


class CallTimeout(TimeoutError):
    """An AWS call got no answer within its overall deadline (an ``OSError``: retried as a connection error)."""

    def __init__(self, service: str, operation: str, seconds: float) -> None:
        self.service, self.operation, self.seconds = service, operation, seconds
        super().__init__(f"{service} {operation}: no answer within {seconds:g}s")


class Deadlines:
    """Runs AWS calls under one overall deadline each, registered in ``calls`` while they run."""

    def __init__(
        self, deadline_s: float = CALL_DEADLINE_S, calls: Calls | None = None, *, stall_s: float = STALL_S
    ) -> None:
        self.deadline_s = deadline_s
        self.stall_s = stall_s
        self.calls = calls or Calls()
        self._log: Any = get_logger("wenu.aws")

    async def run(self, service: str, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        """Await ``call()`` for at most ``deadline_s``.

        Raises:
            CallTimeout: no answer in time (logged as ``call_timed_out``).
        """
        token = self.calls.start(f"{service} {operation}")
        loop = asyncio.get_running_loop()
        warn = loop.call_later(self.stall_s, self._stalled, service, operation)
        timeout = asyncio.timeout(self.deadline_s)
        try:
            async with timeout:
                return await call()
        except TimeoutError as exc:
            if not timeout.expired():
                raise  # the call's own timeout (botocore's, aiohttp's): not ours
            self._log.warning(
                "call_timed_out", service=service, operation=operation, deadline_s=self.deadline_s
            )
            raise CallTimeout(service, operation, self.deadline_s) from exc
        finally:
            warn.cancel()
            self.calls.end(token)

    def _stalled(self, service: str, operation: str) -> None:
        self._log.warning(
            "call_stalled",
            service=service,
            operation=operation,
            after_s=self.stall_s,
            deadline_s=self.deadline_s,
        )


class DeadlineClient:
    """An aiobotocore client whose operations run under :class:`Deadlines`; any other attribute is the client's.

    It stands in for the client (typed as the SDK client by its makers, as ``aws.fast_dynamodb`` is).
    """

    def __init__(self, client: Any, service: str, deadlines: Deadlines) -> None:
        self._client = client
        self._service = service
        self._deadlines = deadlines
        self._operations: dict[str, str] = dict(client.meta.method_to_api_mapping)

    def get_paginator(self, name: str) -> _Paginator:
        """The client's paginator, each page fetched under the deadline."""
        return _Paginator(
            self._client.get_paginator(name), self._service, self._operations[name], self._deadlines
        )

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        operation = self._operations.get(name)
        if operation is None:
            return attribute  # meta, exceptions, close, ...

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._deadlines.run(self._service, operation, lambda: attribute(*args, **kwargs))

        return call


class _Paginator:
    def __init__(self, paginator: Any, service: str, operation: str, deadlines: Deadlines) -> None:
        self._paginator, self._call = paginator, (service, operation, deadlines)

    def paginate(self, **kwargs: Any) -> _Pages:
        return _Pages(self._paginator.paginate(**kwargs), *self._call)


class _Pages:
    """``async for page in ...``: each page under the deadline; anything else is the page iterator's own."""

    def __init__(self, pages: Any, service: str, operation: str, deadlines: Deadlines) -> None:
        self._pages, self._service, self._operation, self._deadlines = pages, service, operation, deadlines
        self._iterator: Any = None

    def __aiter__(self) -> _Pages:
        self._iterator = self._pages.__aiter__()
        return self

    async def __anext__(self) -> Any:
        return await self._deadlines.run(self._service, self._operation, self._iterator.__anext__)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pages, name)  # build_full_result, search, ...: not under the deadline


def with_deadlines(client: C, service: str, deadlines: Deadlines) -> C:
    """``client`` (an aiobotocore client) with every operation under ``deadlines``, typed as the client."""
    return cast("C", DeadlineClient(client, service, deadlines))
