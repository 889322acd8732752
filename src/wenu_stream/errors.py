"""Exceptions of wenu-stream, in one place.

Poison records are values (``Rejected``), never exceptions. These are for
configuration mistakes (exit code 2) and for failures that must stop a worker
without checkpointing so that the batch is replayed.
"""

from __future__ import annotations


class WenuError(Exception):
    """Base class of every error raised on purpose by wenu-stream."""


class ConfigError(WenuError):
    """Bad configuration or arguments: names the field and the fix. Exit code 2."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(f"{field}: {problem}. Fix: {fix}")


class KeyRingError(WenuError):
    """The key ring cannot be loaded (missing file, bad key length, KMS refusal)."""


class SinkError(WenuError):
    """A sink could not make a batch durable; the batch must not be checkpointed."""


class SinkRejected(SinkError):
    """A sink refuses the data itself (a 4xx about an item: a value out of range, an item too large).

    Retrying cannot help; the processor bisects the batch down to the records the
    sink refuses and dead-letters them (reason ``sink_rejected``).
    """

    def __init__(self, sink: str, detail: str) -> None:
        super().__init__(f"{sink}: {detail}")
        self.sink = sink
        self.detail = detail


class LeaseLostError(WenuError):
    """This worker no longer holds the lease of a shard; stop processing it."""


class StaleAlarmState(SinkError):
    """A stored instance is newer than ours: another worker evaluates this shard now."""


class NotFoundError(WenuError):
    """What a command names (a series, a dead letter, a stream) does not exist. Exit code 4."""

    def __init__(self, what: str, fix: str) -> None:
        self.what = what
        self.fix = fix
        super().__init__(f"{what}. Fix: {fix}")
