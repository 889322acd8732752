"""What the processor does when a sink fails: the classes of failure, and the bisection of a refused batch.

Three classes (``Failure``), decided by a classifier the composition root
injects (``aws.common.classify`` knows the SDK's errors; the default here
knows only ours):

- ``transient``: throttling, timeouts, 5xx, a refused or reset connection, an
  outage, and 4xx answers that are not about the data (access denied, a table
  that does not exist): the write is retried with backoff for as long as it
  takes (readiness false meanwhile, ``wenu_sink_failures_total`` counts, the
  alert fires). Nothing is skipped.
- ``rejected``: the sink says the data itself is wrong (DynamoDB
  ``ValidationException`` such as a number out of range or an item over
  400 KB; SNS ``InvalidParameter``; S3 ``EntityTooLarge``): retrying cannot
  help, so the uncommitted messages are bisected (:func:`bisect`) down to the
  ones the sink refuses, which are dead-lettered with reason ``sink_rejected``
  and the sink's error, and the shard goes on.
- ``bug``: anything else (a programming error): the shard stops without a
  checkpoint and the batch replays, as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

from wenu_stream.backoff import Backoff
from wenu_stream.errors import SinkError, SinkRejected
from wenu_stream.ingest.batch import AcceptedMessage, BatchOutcome

if TYPE_CHECKING:
    from wenu_stream.ports import BatchSink

T = TypeVar("T")


class Failure(StrEnum):
    TRANSIENT = "transient"
    REJECTED = "rejected"
    BUG = "bug"


Classifier = Callable[[BaseException], Failure]


def default_classify(exc: BaseException) -> Failure:
    """Our own errors and the stdlib's I/O errors; the SDK's are ``aws.common.classify``'s."""
    if isinstance(exc, SinkRejected):
        return Failure.REJECTED
    if isinstance(exc, SinkError | OSError | TimeoutError):
        return Failure.TRANSIENT
    return Failure.BUG


async def bisect(
    items: Sequence[T],
    apply: Callable[[Sequence[T]], Awaitable[None]],
    rewind: Callable[[], Awaitable[None]],
) -> list[tuple[T, SinkRejected]]:
    """Apply ``items`` in order, in halves wherever a sink refuses; return the items refused alone.

    ``apply(part)`` makes ``part`` durable (writes and flushes) or raises
    ``SinkRejected``; after a refusal ``rewind()`` drops whatever the sinks hold
    in memory, so the halves start from what is durable. Parts that went
    through stay durable; the sinks are idempotent, so what a refused part
    made durable before the refusal is not counted twice when its halves run.
    """
    refused: list[tuple[T, SinkRejected]] = []

    async def run(part: Sequence[T]) -> None:
        if not part:
            return
        try:
            await apply(part)
        except SinkRejected as exc:
            await rewind()
            if len(part) == 1:
                refused.append((part[0], exc))
                return
            middle = len(part) // 2
            await run(part[:middle])
            await run(part[middle:])

    await run(items)
    return refused


SinkFactory = Callable[[], Awaitable[Sequence["BatchSink"]]]
Refused = Callable[[list[tuple[AcceptedMessage, SinkRejected]]], Awaitable[None]]
Parked = Callable[[list[AcceptedMessage]], Awaitable[None]]


class SinkSet:
    """One shard's sinks under the failure policy (module docstring), with what they hold uncommitted.

    Every batch written since the last commit is kept (``write``), so that the
    sinks can be rewound (rebuilt by ``factory``, or told to ``release`` the
    shard) and the batches applied again: after a transient failure, and in
    halves by :func:`bisect` after a refusal. ``committed`` forgets them once
    the processor saved the shard state past them.

    Args:
        on_refused: dead-letters the messages a sink refused (and un-accepts them).
        on_failure: reports one failed attempt (metrics, readiness, log).
        attempts: give up (raise) after this many failed attempts; 0: never (the default).
        max_record_age_ms: 0 (off), or the age past which the uncommitted messages are parked
            (``on_parked``) instead of retried while a sink keeps failing.
    """

    def __init__(
        self,
        shard_id: str,
        sinks: Sequence[BatchSink],
        *,
        factory: SinkFactory | None,
        classify: Classifier,
        on_refused: Refused,
        on_failure: Callable[[str, BaseException, Failure, int], None],
        on_parked: Parked,
        attempts: int = 0,
        backoff: Backoff | None = None,
        max_record_age_ms: int = 0,
        wall_ms: Callable[[], int],
    ) -> None:
        self.shard_id = shard_id
        self.sinks = tuple(sinks)
        self.generation = 0
        self._factory, self._classify = factory, classify
        self._on_refused, self._on_failure, self._on_parked = on_refused, on_failure, on_parked
        self._attempts, self._backoff = attempts, backoff or Backoff(base=0.2, cap=30.0)
        self._max_age_ms, self._wall_ms = max_record_age_ms, wall_ms
        self._uncommitted: list[BatchOutcome] = []
        self._sink = ""  # the sink being called, to name it when it fails

    async def write(self, outcome: BatchOutcome) -> None:
        """Hand a batch to every sink (kept until ``committed``)."""
        self._uncommitted.append(outcome)
        await self._policy(lambda: self._write_all(outcome), flush=False)

    async def flush(self) -> None:
        """Make everything written durable in every sink, in order."""
        await self._policy(self._flush_all, flush=True)

    def committed(self) -> None:
        self._uncommitted.clear()

    async def _policy(self, step: Callable[[], Awaitable[None]], *, flush: bool) -> None:
        failures, isolate = 0, False
        while True:
            try:
                if isolate:
                    isolate = False
                    await self._isolate()
                elif failures:
                    await self._rewind()
                    for outcome in self._uncommitted:
                        await self._write_all(outcome)
                if not failures or flush:
                    await (step() if not failures else self._flush_all())
                self._backoff.reset()
                return
            except Exception as exc:
                kind = self._classify(exc)
                if kind is Failure.BUG:
                    raise
                failures += 1
                self._on_failure(self._sink, exc, kind, failures)
                if kind is Failure.REJECTED:
                    isolate = True
                    continue
                if self._attempts and failures >= self._attempts:
                    raise
                if self._too_old():
                    await self._park()
                    return
                await self._backoff.sleep()

    async def _write_all(self, outcome: BatchOutcome) -> None:
        for sink in self.sinks:
            self._sink = sink.name
            await sink.write(self.shard_id, outcome)

    async def _flush_all(self) -> None:
        for sink in self.sinks:
            self._sink = sink.name
            await sink.flush()

    async def _rewind(self) -> None:
        """Drop what the sinks hold in memory: they start again from what is durable."""
        if self._factory is None:
            for sink in self.sinks:
                sink.release(self.shard_id)
            return
        self.sinks = tuple(await self._factory())
        for sink in self.sinks:
            sink.rebuild(self.shard_id, self.generation)

    async def _apply(self, part: Sequence[AcceptedMessage]) -> None:
        """Write and flush ``part`` alone; a refusal comes out as ``SinkRejected`` (for ``bisect``)."""
        try:
            await self._write_all(BatchOutcome(accepted=list(part), dead_letters=[]))
            await self._flush_all()
        except Exception as exc:
            if self._classify(exc) is Failure.REJECTED and not isinstance(exc, SinkRejected):
                raise SinkRejected(self._sink, f"{type(exc).__name__}: {exc}") from exc
            raise

    async def _isolate(self) -> None:
        """Bisect the uncommitted messages down to those a sink refuses; dead-letter them; keep the rest."""
        messages = [m for outcome in self._uncommitted for m in outcome.accepted]
        await self._rewind()
        refused = await bisect(messages, self._apply, self._rewind)
        if len(refused) == len(messages) > 1:
            raise SinkError(f"{refused[0][1]} (and every other message of the batch): not about the data")
        if refused:
            await self._on_refused(refused)
            self._drop({id(m) for m, _ in refused})

    def _too_old(self) -> bool:
        if not self._max_age_ms:
            return False
        arrivals = [m.arrival_ms for outcome in self._uncommitted for m in outcome.accepted]
        return bool(arrivals) and self._wall_ms() - min(arrivals) > self._max_age_ms

    async def _park(self) -> None:
        """``max_record_age`` passed while a sink kept failing: dead-letter what is uncommitted and go on."""
        parked = [m for outcome in self._uncommitted for m in outcome.accepted]
        await self._on_parked(parked)
        self._drop({id(m) for m in parked})
        await self._rewind()

    def _drop(self, gone: set[int]) -> None:
        for outcome in self._uncommitted:
            outcome.accepted = [m for m in outcome.accepted if id(m) not in gone]
