"""Composition root: the one place that wires config, clients, stores, sinks and a driver together.

Tests use the same functions with fakes (``Runtime(config, dead_letters=InMemoryDeadLetterStore(), ...)``).
Clients live in one ``AsyncExitStack`` for the life of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiobotocore.session import AioSession, get_session
from prometheus_client import CollectorRegistry

from wenu_stream.config import Config
from wenu_stream.crypto import KeyRing
from wenu_stream.errors import ConfigError
from wenu_stream.metrics import Metrics
from wenu_stream.model import KinesisRecord
from wenu_stream.ports import BatchSink, DeadLetterStore, ShardProcessor, StateStore
from wenu_stream.processor import PipelineProcessor
from wenu_stream.sinks.dead_letter import S3DeadLetterStore
from wenu_stream.sinks.s3_put import FastS3Put
from wenu_stream.sinks.state import DynamoStateStore

SinkFactory = Callable[["Runtime"], Awaitable[Sequence[BatchSink]]]


def load_keyring(config: Config) -> KeyRing:
    """Load the configured key ring (local file or KMS-wrapped), or explain what to set."""
    from wenu_stream import keyring

    if config.keyring.kms_file:
        import boto3

        return keyring.load_kms_keyring(config.keyring.kms_file, boto3.client("kms"))
    if config.keyring.file:
        return keyring.load_keyring_file(config.keyring.file)
    raise ConfigError("WENU_KEYRING_FILE (flag --keyring)", "no key ring configured",
                      "point it at a JSON key-ring file, or set WENU_KEYRING_KMS_FILE to a KMS-wrapped one")


class Runtime:
    """Open clients and stores shared by every shard processor of this process."""

    def __init__(
        self,
        config: Config,
        *,
        keyring: KeyRing | None = None,
        metrics: Metrics | None = None,
        session: AioSession | None = None,
        dead_letters: DeadLetterStore | None = None,
        state: StateStore | None = None,
        sinks: SinkFactory | None = None,
    ) -> None:
        self.config = config
        self.keyring = keyring
        self.registry = CollectorRegistry()
        self.metrics = metrics or Metrics.create(self.registry)
        self.session = session or get_session()
        self.dead_letters = dead_letters
        self.state = state
        self._sinks = sinks
        self.stack = contextlib.AsyncExitStack()
        self.clients: dict[str, Any] = {}
        self._started = False
        self._lock = asyncio.Lock()

    async def client(self, service: str) -> Any:
        """An aiobotocore client for ``service``, created once (endpoints from AWS_ENDPOINT_URL*)."""
        if service not in self.clients:
            self.clients[service] = await self.stack.enter_async_context(self.session.create_client(service))
        return self.clients[service]

    async def start(self) -> Runtime:
        """Load the key ring and open the stores (idempotent)."""
        async with self._lock:
            if self._started:
                return self
            cfg = self.config
            if self.keyring is None:
                self.keyring = await asyncio.to_thread(load_keyring, cfg)
            if self.dead_letters is None:
                s3 = await self.client("s3")
                fast = await FastS3Put.open(self.session, s3, cfg.sinks.bucket)
                self.stack.push_async_callback(fast.close)
                self.dead_letters = S3DeadLetterStore(
                    s3, bucket=cfg.sinks.bucket, prefix=cfg.sinks.dead_letter_prefix,
                    app=cfg.app, stream=cfg.kinesis.stream, fast=fast,
                )
            if self.state is None:
                self.state = DynamoStateStore(
                    await self.client("dynamodb"), table=cfg.sinks.state_table, app=cfg.app, stream=cfg.kinesis.stream
                )
            if self._sinks is None:
                from wenu_stream.apps import APP_SINKS

                self._sinks = APP_SINKS[cfg.app]
            self.sinks = tuple(await self._sinks(self))
            self._started = True
            return self

    async def close(self) -> None:
        await self.stack.aclose()

    async def __aenter__(self) -> Runtime:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def processor_factory(self) -> Callable[[str], ShardProcessor]:
        """A factory for the native driver (``start()`` must have run)."""
        return self.processor

    def processor(self, shard_id: str) -> PipelineProcessor:
        """A fresh processor for ``shard_id`` (``start()`` must have run)."""
        assert self.keyring is not None and self.dead_letters is not None and self.state is not None
        return PipelineProcessor(
            app=self.config.app, keyring=self.keyring, dead_letters=self.dead_letters, state=self.state,
            sinks=self.sinks, metrics=self.metrics, dedup_window=self.config.sinks.dedup_window,
            checkpoint_interval=self.config.kinesis.checkpoint_interval_s,
        )


def serve_metrics(config: Config, runtime: Runtime) -> Any:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``config.metrics_host:metrics_port``, or None if the port is 0."""
    if not config.metrics_port:
        return None
    from wenu_stream.health import serve

    return serve(config.metrics_port, runtime.registry, host=config.metrics_host)


class _LazyProcessor:
    """Starts the runtime on first use, inside the caller's event loop (the KCL path has one per process)."""

    def __init__(self, runtime: Runtime, shard_id: str) -> None:
        self._runtime = runtime
        self._inner: PipelineProcessor | None = None

    async def initialize(self, shard_id: str, checkpoint: str | None, parent_shard_ids: Sequence[str]) -> None:
        await self._runtime.start()
        self._inner = self._runtime.processor(shard_id)
        await self._inner.initialize(shard_id, checkpoint, parent_shard_ids)

    async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> bool:
        assert self._inner is not None, "initialize() first"
        return await self._inner.process(records, millis_behind_latest)

    async def flush(self) -> str | None:
        assert self._inner is not None, "initialize() first"
        return await self._inner.flush()

    async def shard_ended(self) -> None:
        assert self._inner is not None, "initialize() first"
        await self._inner.shard_ended()

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def shard_processor_factory(config: Config, runtime: Runtime | None = None) -> Callable[[str], ShardProcessor]:
    """A factory of shard processors for ``config.app``; the runtime starts lazily in the caller's loop."""
    rt = runtime or Runtime(config)
    return lambda shard_id: _LazyProcessor(rt, shard_id)
