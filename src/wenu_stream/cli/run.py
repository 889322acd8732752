"""`wenu-stream run --app processing|alarms`: consume the stream with the native asyncio driver.

Before anything is created it checks what ``check-config --app`` checks (key
ring, metrics address, catalog, stream, bucket, tables, topic). Stops on
SIGTERM/SIGINT after flushing and checkpointing what is durable (SIGHUP reads the
key ring again; it is also read every ``keyring.reload_s``), or by itself
after ``--idle-exit`` seconds without records. Exit code 0 on a clean stop, 1
when a shard failed (its batch was not checkpointed and will replay), 2 for bad
configuration or a missing resource (before any side effect); AWS errors as
``wenu-stream --help`` lists them.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.config import Config
from wenu_stream.log import configure_logging, get_logger


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "run",
        help="consume the stream (native driver)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(
        p, "--app", "--stream", "--bucket", "--keyring", "--kms-keyring", "--catalog", "--log-level"
    )
    p.add_argument(
        "--metrics-port",
        dest="cfg:metrics_port",
        default=None,
        help="serve Prometheus metrics and health on this port (0: off) [env: WENU_METRICS_PORT]",
    )
    p.add_argument(
        "--metrics-host",
        dest="cfg:metrics_host",
        default=None,
        help="address of the metrics/health endpoint (default 127.0.0.1; 0.0.0.0 in a container) "
        "[env: WENU_METRICS_HOST]",
    )
    p.add_argument(
        "--idle-exit",
        dest="cfg:kinesis.idle_exit_s",
        default=None,
        help="stop after this many seconds without records (0: run forever) [env: WENU_KINESIS_IDLE_EXIT_S]",
    )
    p.add_argument(
        "--worker-id",
        dest="cfg:lease.worker_id",
        default=None,
        help="lease owner name (default host:pid) [env: WENU_LEASE_WORKER_ID]",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    early = _early_stop()  # a SIGTERM during the checks below (a scale-in right after a start) exits at once
    config = config_from(args)
    from wenu_stream.bootstrap import keyring_warnings, load_keyring
    from wenu_stream.cli.check_config import check_ready

    configure_logging(config.log_level)
    keyring = load_keyring(config)  # a bad key ring fails here, before any side effect
    for warning in keyring_warnings(config):
        get_logger("wenu.keyring").warning("keyring_file_exposed", detail=warning)
    check_ready(config)  # stream, bucket, tables, topic, catalog, metrics address: before the lease table
    stop = asyncio.Event()
    return asyncio.run(consume(config, keyring=keyring, stop=stop, requested=early))


def _early_stop() -> list[int]:
    """Until ``consume`` takes the handlers over, SIGTERM/SIGINT end the process at once (exit 0).

    Nothing has started yet (the checks only read), and a check waiting on a black-holed service must not
    hold a stop up. The list is for signals that arrive once the event loop runs, before ``consume``'s own
    handlers are installed (none, as things are; kept for its signature).
    """

    def leave(number: int, _frame: object) -> None:
        get_logger("wenu.run").info("stopped_before_start", signal=signal.Signals(number).name)
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, leave)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the key ring is read at start anyway
    return []


async def consume(
    config: Config,
    *,
    stop: asyncio.Event | None = None,
    runtime: Any = None,
    requested: list[int] | None = None,
    **runtime_kwargs: Any,
) -> int:
    """Run the native worker until it stops (signal, ``stop`` set, or idle exit); return the exit code.

    ``requested``: signals that arrived before the event loop ran; any stops the worker at once.
    """
    from wenu_stream.bootstrap import Runtime, serve_metrics
    from wenu_stream.drivers.native.worker import run_worker

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    runtime = runtime or Runtime(config, **runtime_kwargs)

    def stopping() -> None:
        runtime.health.stopping()  # readiness fails at once; liveness stays up while the batch in flight finishes
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping)
    if requested:
        stopping()
    loop.add_signal_handler(signal.SIGHUP, lambda: runtime.keyrings and runtime.keyrings.request())
    log = get_logger("wenu.run").bind(app=config.app)
    async with runtime as rt:
        server = serve_metrics(config, rt)
        try:
            result = await run_worker(
                config,
                rt.processor_factory(),
                metrics=rt.metrics,
                stop=stop,
                session=rt.session,
                health=rt.health,
            )
        finally:
            if server is not None:
                server.shutdown()
    log.info("worker_stopped", records=result.records, checkpoints=result.checkpoints, failed=result.failed)
    return 1 if result.failed else 0
