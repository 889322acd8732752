"""Liveness and readiness of a native worker, served next to ``/metrics`` on the metrics port.

- ``GET /healthz`` (liveness): 200 while the process serves HTTP. A hung
  process stops answering and the orchestrator restarts it.
- ``GET /readyz`` (readiness): 200 unless a sink's last durable write failed
  (its retries are running out), or the worker is stopping; then 503 with the
  reasons, one per line. A later successful write of that sink makes it ready
  again. Readiness never restarts anything: it takes the task out of service
  and alerts, while the processor's own retries decide when to give up.
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


class Health:
    """What the probes answer, fed by the processor's durable writes (thread-safe)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._failing: dict[str, tuple[float, str]] = {}  # sink -> (since, error)
        self._stopping = False
        self._monotonic = monotonic

    def note(self, sink: str, ok: bool, error: str = "") -> None:
        """Record the outcome of one durable write attempt of ``sink``."""
        with self._lock:
            if ok:
                self._failing.pop(sink, None)
            elif sink not in self._failing:
                self._failing[sink] = (self._monotonic(), error)

    def stopping(self) -> None:
        """The worker is shutting down: not ready any more."""
        with self._lock:
            self._stopping = True

    def readiness(self) -> tuple[bool, list[str]]:
        """``(ready, reasons)``."""
        now = self._monotonic()
        with self._lock:
            reasons = [
                f"sink {sink} failing for {now - since:.1f}s: {error}".rstrip(": ")
                for sink, (since, error) in sorted(self._failing.items())
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
