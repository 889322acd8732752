"""Liveness and readiness of a native worker, served next to ``/metrics`` on the metrics port.

- ``GET /healthz`` (liveness): 200 while the process serves HTTP. A hung
  process stops answering and the orchestrator restarts it.
- ``GET /readyz`` (readiness): 200 while the worker can do its work; else 503
  with the reasons, one per line:
  - a sink's last durable write failed (``note``; a later success clears it);
  - a problem reported with ``report`` lasted longer than its grace: Kinesis
    reads failing (native driver), a lease not renewed for half the failover
    time;
  - an AWS call has been in flight longer than ``stall_s`` (``calls``: every
    SDK and signed call of the worker registers there, ``aws.deadlines``);
  - the worker is stopping.
  Readiness never restarts anything: it takes the task out of service and
  alerts, while the retries decide when to give up.
- ``GET /metrics``: the Prometheus exposition of the given registry.

The processor reports each durable write with one call, ``HEALTH.note(sink, ok)``
(``HEALTH`` is the process's tracker, as ``prometheus_client.REGISTRY`` is its
registry); ``serve`` replaces ``prometheus_client.start_http_server``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder


class Calls:
    """The AWS calls in flight (thread-safe): ``start`` returns a token for ``end``; ``stalled`` lists the old ones."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, tuple[str, float]] = {}  # token -> (what, since)
        self._next = 0
        self._monotonic = monotonic

    def start(self, what: str) -> int:
        with self._lock:
            self._next += 1
            self._open[self._next] = (what, self._monotonic())
            return self._next

    def end(self, token: int) -> None:
        with self._lock:
            self._open.pop(token, None)

    def stalled(self, older_than_s: float) -> list[tuple[str, float]]:
        """``(what, seconds in flight)`` of the calls in flight for longer than ``older_than_s``, oldest first."""
        now = self._monotonic()
        with self._lock:
            ages = [(what, now - since) for what, since in self._open.values()]
        return sorted((c for c in ages if c[1] > older_than_s), key=lambda c: -c[1])


class Health:
    """What the probes answer, fed by durable writes, reads, lease renewals and calls in flight (thread-safe).

    ``stall_s``: a call in flight for longer makes the worker not ready (``aws.stall_s``).
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic, *, stall_s: float = 10.0) -> None:
        self._lock = threading.Lock()
        self._failing: dict[str, tuple[float, str, float]] = {}  # what -> (since, error, grace)
        self._stopping = False
        self._monotonic = monotonic
        self.stall_s = stall_s
        self.calls = Calls(monotonic)

    def note(self, sink: str, ok: bool, error: str = "") -> None:
        """Record the outcome of one durable write attempt of ``sink`` (not ready from its first failure)."""
        self.report(f"sink {sink}", ok, error)

    def report(self, what: str, ok: bool, error: str = "", grace_s: float = 0.0) -> None:
        """Record whether ``what`` works; failing for longer than ``grace_s`` makes the worker not ready."""
        with self._lock:
            if ok:
                self._failing.pop(what, None)
            elif what not in self._failing:  # failing since the first failure, for its first reason
                self._failing[what] = (self._monotonic(), error, grace_s)

    def forget(self, prefix: str) -> None:
        """Drop every problem whose name starts with ``prefix`` (a shard this worker no longer holds)."""
        with self._lock:
            for what in [w for w in self._failing if w.startswith(prefix)]:
                del self._failing[what]

    def stopping(self) -> None:
        """The worker is shutting down: not ready any more."""
        with self._lock:
            self._stopping = True

    def readiness(self) -> tuple[bool, list[str]]:
        """``(ready, reasons)``."""
        now = self._monotonic()
        with self._lock:
            reasons = [
                f"{what} failing for {now - since:.1f}s: {error}".rstrip(": ")
                for what, (since, error, grace) in sorted(self._failing.items())
                if now - since >= grace
            ]
            reasons += [
                f"call {what} in flight for {age:.1f}s" for what, age in self.calls.stalled(self.stall_s)
            ]
            if self._stopping:
                reasons.append("stopping")
        return not reasons, reasons


HEALTH = Health()


def _handler(registry: CollectorRegistry, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server dispatches on this name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, encoder(registry), content_type)
            elif path == "/healthz":
                self._send(200, b"ok\n")
            elif path == "/readyz":
                ready, reasons = health.readiness()
                self._send(200 if ready else 503, ("ready" if ready else "\n".join(reasons)).encode() + b"\n")
            else:
                self._send(404, b"not found: /metrics, /healthz, /readyz\n")

        def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # probes are not worth a log line
            pass

    return Handler


def serve(
    port: int, registry: CollectorRegistry, health: Health = HEALTH, host: str = ""
) -> ThreadingHTTPServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on a daemon thread; ``server.shutdown()`` stops it.

    ``host`` "" listens on every interface (Prometheus scrapes the task); tests pass 127.0.0.1.
    """
    server = ThreadingHTTPServer((host, port), _handler(registry, health))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="wenu-health", daemon=True).start()
    return server
