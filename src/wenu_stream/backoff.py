"""The one backoff of the project: exponential delays with full jitter.

Many shards retrying together spread out instead of stampeding the service:
the n-th consecutive failure waits ``uniform(0, min(cap, base * 2**n))``.
Every loop that waits between attempts takes its delays from :class:`Backoff`
(sync loops pass its delay to their own ``sleep``; async ones await it).

Retry layers on the stream path, outermost first (each layer retries what the
one below gave up on; nothing else retries):

1. ``ingest.failures`` (the sinks' batches) and ``ingest.processor``
   ``_durable`` (dead letters, shard state, hooks): a transient failure is
   retried with :class:`Backoff` for as long as it lasts (readiness false
   meanwhile); a refusal about the data is bisected to its records and
   dead-lettered (``sink_rejected``); a bug stops the shard without a
   checkpoint and the records replay.
2. The adapter's own loops, only for answers that are not errors: BatchGetItem's
   unprocessed keys (``aws.common.batch_get``), PutRecords' failed entries
   (``ops.redrive``, ``devtools.simulate.producer``), an SNS publish retried until
   ``give_up_s`` (``aws.notifier``), a KCL checkpoint refused with a retryable
   error (``drivers.kcl.adapter``).
3. botocore's own retries inside every SDK call: ``aws.common.client_config``
   (standard mode: throttling, 5xx and connection errors, with deadlines on
   connect and read). The native reader's GetRecords is hand-signed and its
   consumer loop backs off with :class:`Backoff` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import TypeVar

T = TypeVar("T")


class Backoff:
    """Delays ``uniform(0, min(cap, base * 2**n))`` for the n-th consecutive failure (full jitter).

    ``reset()`` after a success.
    """

    def __init__(self, base: float = 0.1, cap: float = 10.0, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The delay before the next attempt; counts one more failure."""
        ceiling = min(self.cap, self.base * 2 ** min(self.failures, 30))
        self.failures += 1
        return self._rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.failures = 0

    async def sleep(self) -> None:
        """Sleep the next delay."""
        await asyncio.sleep(self.next_delay())

    async def wait(self, stop: asyncio.Event) -> bool:
        """Sleep the next delay unless ``stop`` is set first; return True if stopping."""
        return await sleep_unless(stop, self.next_delay())


async def sleep_unless(event: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``event`` is set; return True if the event is set."""
    if event.is_set():
        return True
    if seconds <= 0:
        return False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()
