"""`wenu-stream serve-metrics`: one Prometheus exporter for every shard process of a KCL task.

On the KCL path the MultiLangDaemon starts one Python process per shard, so
metrics live in ``PROMETHEUS_MULTIPROC_DIR`` (set and wiped by
``deploy/ecs/entrypoint.sh`` before anything starts, as the client library
requires). This process merges them with ``MultiProcessCollector`` and serves:

  /metrics   the merged metrics of all shard processes (text or OpenMetrics)
  /healthz   liveness: 200 while the exporter answers
  /readyz    readiness: 200 unless a shard's records have waited more than 300 s for their checkpoint
             (``wenu_checkpoint_age_seconds`` of the shard processes, refreshed every second even while a
             callback hangs; the same bound as the WenuCheckpointsStalled alert), or a shard process says
             it is not ready (``wenu_unready_until_seconds`` in the future: a sink failing, an AWS call in
             flight past ``aws.stall_s``; a process that died stops renewing it); 503 names the shards

The directory is ``--multiproc-dir``, else prometheus_client's own
``PROMETHEUS_MULTIPROC_DIR`` (the library reads it, as it does in every shard
process). It binds 127.0.0.1 unless ``--host``/``WENU_METRICS_HOST`` says
otherwise, like the worker's endpoint (the ECS task definitions set 0.0.0.0).
Stops on SIGTERM/SIGINT. Exit code 2 when the port or the directory is missing,
the host is not an address of this machine or the port is in use, before
anything is served.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from wenu_stream.cli.common import config_from
from wenu_stream.errors import ConfigError
from wenu_stream.log import configure_logging, get_logger

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client itself, never by our code
STALLED_S = 300.0  # a shard whose handed records waited longer for a checkpoint makes the task not ready
Start = Callable[[str, list[tuple[str, str]]], Any]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "serve-metrics",
        help="serve the metrics of all shard processes (KCL path)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--port",
        dest="cfg:metrics_port",
        default=None,
        help="port to serve /metrics and /healthz on [env: WENU_METRICS_PORT]",
    )
    p.add_argument(
        "--host",
        dest="cfg:metrics_host",
        default=None,
        help="address to bind (default 127.0.0.1, as the worker's; the ECS task definitions set 0.0.0.0 so "
        "Prometheus can scrape the task) [env: WENU_METRICS_HOST]",
    )
    p.add_argument(
        "--multiproc-dir",
        default=None,
        help=f"directory the shard processes write their metrics to [env: {MULTIPROC_ENV}]",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    if not config.metrics_port:
        raise ConfigError(
            "WENU_METRICS_PORT (flag --port)", "no port set", "give the port Prometheus scrapes, e.g. 9100"
        )
    app = exporter_app(args.multiproc_dir)
    configure_logging(config.log_level)
    try:
        server = make_server(
            config.metrics_host,
            config.metrics_port,
            app,
            server_class=_ThreadingServer,
            handler_class=_QuietHandler,
        )
    except OSError as exc:
        from wenu_stream.ops.preflight import metrics_bind_error

        raise metrics_bind_error(config.metrics_host, config.metrics_port, exc) from exc
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    log = get_logger("wenu.metrics")
    log.info("metrics_serving", host=config.metrics_host, port=server.server_port)
    stop.wait()
    server.shutdown()
    server.server_close()
    log.info("metrics_stopped")
    return 0


def exporter_app(directory: str | None = None) -> Callable[[dict[str, Any], Start], Iterable[bytes]]:
    """A WSGI app: ``/healthz`` for liveness, everything else the merged metrics of the shard processes.

    Args:
        directory: the multiprocess directory; None: ``PROMETHEUS_MULTIPROC_DIR``.

    Raises:
        ConfigError: no directory given or set, or it does not exist.
    """
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()  # fresh: only the merged files, never this process's own metrics
    try:
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]  # library has no annotation here
    except ValueError as exc:  # unset or not a directory; the library's message names which
        raise ConfigError(
            f"--multiproc-dir or {MULTIPROC_ENV}",
            str(exc),
            "point it at the directory the shard processes share (deploy/ecs/entrypoint.sh sets it)",
        ) from exc
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path == "/healthz":
            start_response("200 OK", _text())
            return [b"ok\n"]
        if path == "/readyz":
            stalled, unready = stalled_shards(registry), unready_shards(registry)
            if stalled or unready:
                start_response("503 Service Unavailable", _text())
                lines = [f"not ready: checkpoint stalled on {', '.join(stalled)}"] if stalled else []
                lines += [f"not ready: {', '.join(unready)} (see its log)"] if unready else []
                return ["".join(line + "\n" for line in lines).encode()]
            start_response("200 OK", _text())
            return [b"ready\n"]
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    return app


def _text() -> list[tuple[str, str]]:
    return [("Content-Type", "text/plain; charset=utf-8")]  # a new list: the server adds its headers to it


def stalled_shards(registry: CollectorRegistry, bound_s: float = STALLED_S) -> list[str]:
    """``app/shard (age s)`` of every shard whose checkpoint age exceeds ``bound_s``, oldest first."""
    ages = [
        (sample.value, f"{sample.labels.get('app', '?')}/{sample.labels.get('shard', '?')}")
        for family in registry.collect()
        if family.name == "wenu_checkpoint_age_seconds"
        for sample in family.samples
        if sample.value > bound_s
    ]
    return [f"{shard} ({age:.0f} s)" for age, shard in sorted(ages, reverse=True)]


def unready_shards(registry: CollectorRegistry, now: Callable[[], float] = time.time) -> list[str]:
    """``app/shard`` of every shard process that reports itself not ready (``wenu_unready_until_seconds``)."""
    at = now()
    return sorted(
        f"{sample.labels.get('app', '?')}/{sample.labels.get('shard', '?')}"
        for family in registry.collect()
        if family.name == "wenu_unready_until_seconds"
        for sample in family.samples
        if sample.value > at
    )


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per scrape, so a slow scraper never blocks the health check."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # stdlib's signature
        """Drop the per-request access line (wsgiref writes it to stderr in its own format)."""
