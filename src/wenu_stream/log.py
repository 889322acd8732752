"""Structured JSON logs on stderr. stdout belongs to the KCL protocol, so nothing here touches it."""

from __future__ import annotations

import logging
import sys
from typing import Any, BinaryIO, cast

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(level: str = "info", *, stream: Any = None) -> None:
    """Send structlog JSON lines to stderr (or ``stream``, a binary file) at ``level``.

    Context such as ``shard_id`` is bound with ``structlog.contextvars`` so every
    line of a shard's task carries it.
    """
    out = stream if stream is not None else _Stderr()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.BytesLoggerFactory(file=cast(BinaryIO, out)),
        cache_logger_on_first_use=False,
    )


class _Stderr:
    """Whatever ``sys.stderr`` is at each write (a test harness or a daemon may swap it after configuration)."""

    def write(self, data: bytes) -> int:
        err = sys.stderr
        buffer = getattr(err, "buffer", None)
        if buffer is not None:
            return int(buffer.write(data))
        return int(err.write(data.decode("utf-8", "replace")))

    def flush(self) -> None:
        sys.stderr.flush()


def _dumps(obj: Any, **_: Any) -> bytes:
    import msgspec

    return msgspec.json.encode(obj, enc_hook=str)


def get_logger(name: str = "wenu") -> Any:
    """Return a structlog logger named ``name``.

    If nobody configured logging yet, configure it to stderr first: structlog's
    own default prints to stdout, which belongs to the KCL protocol.
    """
    if not structlog.is_configured():
        configure_logging()
    return structlog.get_logger(name)
