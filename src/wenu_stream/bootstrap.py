"""The composition root: the one place that builds adapters and applications from the configuration.

Nothing below it imports it: the CLI, the KCL entry points (``consumers/``) and
the web service start here. Adapters get config values and open clients, never
a ``Runtime``. Tests use the same functions with fakes
(``Runtime(config, dead_letters=InMemoryDeadLetterStore(), ...)``). Clients live
in one ``AsyncExitStack`` for the life of the process.

The two applications:

- processing: enrich once -> Company Stats (DynamoDB) and warehouse staging (S3),
  in that flush order; unmapped readings -> quarantine (S3).
- alarms: enrich once -> alarm engine -> alarm state (DynamoDB) -> notifications (SNS).
- api: the web service's catalog gateway, authenticator and AWS clients (``api_services``).

Dead letters and the shard state are common to both.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

from aiobotocore.session import AioSession, get_session
from prometheus_client import CollectorRegistry

from wenu_stream.alarms.engine import Notification
from wenu_stream.alarms.message import Readable, readable
from wenu_stream.alarms.sink import AlarmsSink
from wenu_stream.aws.alarm_state import DynamoAlarmStateStore
from wenu_stream.aws.common import classify, client_config, sync_client_config
from wenu_stream.aws.dead_letters import S3DeadLetterStore, iter_objects, letter_prefix
from wenu_stream.aws.deadlines import DeadlineClient, Deadlines
from wenu_stream.aws.fast_dynamodb import FastDynamoDB
from wenu_stream.aws.keyring import ReloadingKeyRing
from wenu_stream.aws.notifier import SnsNotifier, resolve_topic_arn
from wenu_stream.aws.quarantine import S3Quarantine
from wenu_stream.aws.state import DynamoStateStore
from wenu_stream.aws.stats_store import DynamoStatsStore
from wenu_stream.catalog.directory import CatalogDirectory
from wenu_stream.catalog.store import CatalogStore
from wenu_stream.config import Config
from wenu_stream.errors import ConfigError, KeyRingError
from wenu_stream.health import Health
from wenu_stream.ingest.enriching import EnrichingSink
from wenu_stream.ingest.processor import PipelineProcessor
from wenu_stream.log import get_logger
from wenu_stream.metrics import Metrics
from wenu_stream.model import Clock, HashRange, KinesisRecord
from wenu_stream.ports import BatchSink, DeadLetterStore, ReadingSink, ShardProcessor, StateStore
from wenu_stream.records.crypto import KeyRing
from wenu_stream.stats.sink import StatsSink
from wenu_stream.warehouse.staging import S3StagingSink

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient
    from types_aiobotocore_kinesis.client import KinesisClient
    from types_aiobotocore_s3.client import S3Client
    from types_aiobotocore_sns.client import SNSClient

    from wenu_stream.web.app import ApiServices

T = TypeVar("T")
SinkFactory = Callable[["Runtime"], Awaitable[Sequence[BatchSink]]]


def epoch_ms() -> int:
    """The wall clock in epoch milliseconds (``ports.Clock``): the only one the applications get."""
    return int(time.time() * 1000)


def load_keyring(config: Config) -> KeyRing:
    """Load the configured key ring (local file or KMS-wrapped), or explain what to set.

    Raises:
        ConfigError: none configured, or the file cannot be loaded: names ``WENU_KEYRING_FILE`` (or
            ``WENU_KEYRING_KMS_FILE``) and the fix (exit code 2).
    """
    from wenu_stream.aws import keyring

    setting, path = _keyring_setting(config)
    if not path:
        raise ConfigError(
            "WENU_KEYRING_FILE (flag --keyring)",
            "no key ring configured",
            "point it at a JSON key-ring file, or set WENU_KEYRING_KMS_FILE to a KMS-wrapped one",
        )
    try:
        if config.keyring.kms_file:
            import boto3

            kms = boto3.client("kms", config=sync_client_config())
            return keyring.load_kms_keyring(path, kms)
        return keyring.load_keyring_file(path)
    except KeyRingError as exc:
        problem, _, fix = str(exc).removeprefix(f"{path}: ").partition(". Fix: ")
        raise ConfigError(
            f"{setting} = {path}", problem, fix or "fix the file or point the setting at another"
        ) from exc


def keyring_warnings(config: Config) -> list[str]:
    """What is unsafe about the key-ring file (a plain one readable by other users), as sentences."""
    path = config.keyring.file
    if not path or config.keyring.kms_file:
        return []  # a KMS-wrapped file holds ciphertext only
    try:
        mode = Path(path).stat().st_mode & 0o777
    except OSError:
        return []  # load_keyring says what is wrong with it
    if mode & 0o077:
        return [
            f"key-ring file {path} is readable or writable by other users (mode {mode:04o}); "
            f"it holds the data keys in clear. Fix: chmod 600 {path}"
        ]
    return []


def _keyring_setting(config: Config) -> tuple[str, str]:
    if config.keyring.kms_file:
        return "WENU_KEYRING_KMS_FILE (flag --kms-keyring)", config.keyring.kms_file
    return "WENU_KEYRING_FILE (flag --keyring)", config.keyring.file


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
        health: Health | None = None,
        clock: Clock = epoch_ms,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.clock = clock  # wall time, epoch ms (benchmarks run the applications on a simulated one)
        self.monotonic = monotonic  # the commit interval's clock
        self.keyring = keyring
        self.keyrings: ReloadingKeyRing | None = None  # the configured key-ring file, read again
        self.registry = CollectorRegistry()
        self.metrics = metrics or Metrics.create(self.registry)
        self.health = health or Health(stall_s=config.aws.stall_s)
        self.deadlines = Deadlines(config.aws.call_deadline_s, self.health.calls, stall_s=config.aws.stall_s)
        self.session = session or get_session()
        self.dead_letters = dead_letters
        self.state = state
        self._sinks = sinks
        self._shared: dict[str, Any] = {}
        self._once_lock = asyncio.Lock()
        self.sinks: tuple[BatchSink, ...] = ()
        self.stack = contextlib.AsyncExitStack()
        self.clients: dict[str, Any] = {}  # one client per service, each of its own type: client() types them
        self._started = False
        self._lock = asyncio.Lock()

    @overload
    async def client(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    @overload
    async def client(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    async def client(self, service: Literal["sns"]) -> SNSClient: ...
    @overload
    async def client(self, service: Literal["kinesis"]) -> KinesisClient: ...

    async def client(self, service: str) -> Any:
        """An aiobotocore client for ``service``, created once (endpoints from AWS_ENDPOINT_URL*, settings from
        ``aws.common.client_config``), each call under ``aws.deadlines``."""
        if service not in self.clients:
            aws = self.config.aws
            config = client_config(aws.connect_timeout_s, aws.read_timeout_s)
            made = self.session.create_client(service, config=config)  # type: ignore[call-overload]  # any service by name
            opened = await self.stack.enter_async_context(made)
            self.clients[service] = DeadlineClient(opened, service, self.deadlines)
        return self.clients[service]

    async def dynamodb(self) -> DynamoDBClient:
        """The DynamoDB client of the stores: its per-commit calls signed by hand (``aws.fast_dynamodb``).

        Typed as the SDK client it stands in for (same methods, requests and answers), so the stores'
        requests are checked against the SDK stubs whichever of the two runs them.
        """
        if "dynamodb-fast" not in self.clients:
            aws = self.config.aws
            fast = await FastDynamoDB.open(
                self.session,
                await self.client("dynamodb"),
                deadlines=self.deadlines,
                connect_s=aws.connect_timeout_s,
                read_s=aws.read_timeout_s,
            )
            self.stack.push_async_callback(fast.close)
            self.clients["dynamodb-fast"] = fast
        return cast("DynamoDBClient", self.clients["dynamodb-fast"])

    async def start(self) -> Runtime:
        """Load the key ring and open the stores (idempotent)."""
        async with self._lock:
            if self._started:
                return self
            cfg = self.config
            if self.keyring is None:
                self.keyring = await asyncio.to_thread(load_keyring, cfg)
                for warning in keyring_warnings(cfg):
                    get_logger("wenu.keyring").warning("keyring_file_exposed", detail=warning)
            if (
                cfg.keyring.file or cfg.keyring.kms_file
            ):  # the configured file stays the source: read it again
                self.keyrings = ReloadingKeyRing(
                    functools.partial(load_keyring, cfg), self.keyring, every_s=cfg.keyring.reload_s
                )
            if self.dead_letters is None:
                self.dead_letters = S3DeadLetterStore(
                    await self.client("s3"),
                    bucket=cfg.sinks.bucket,
                    prefix=cfg.sinks.dead_letter_prefix,
                    app=cfg.app,
                    stream=cfg.kinesis.stream,
                )
            if self.state is None:
                self.state = DynamoStateStore(
                    await self.dynamodb(),
                    table=cfg.sinks.state_table,
                    app=cfg.app,
                    stream=cfg.kinesis.stream,
                )
            self.sinks = tuple(await self._shard_sinks())  # built once here: a bad setting fails at start
            self._started = True
            return self

    async def close(self) -> None:
        await self.stack.aclose()

    async def __aenter__(self) -> Runtime:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _shard_sinks(self) -> Sequence[BatchSink]:
        """A shard's own sinks (each shard has its own: a rewind rebuilds them, ``ingest.failures``)."""
        return await (self._sinks or APP_SINKS[self.config.app])(self)

    async def once(self, key: str, make: Callable[[], Awaitable[T]]) -> T:
        """What every shard of this process shares (the catalog cache, the topic's ARN), made once."""
        async with self._once_lock:
            if key not in self._shared:
                self._shared[key] = await make()
            return cast("T", self._shared[key])

    def processor_factory(self) -> Callable[[str], ShardProcessor]:
        """A factory for the native driver (``start()`` must have run)."""
        return self.processor

    def processor(self, shard_id: str) -> PipelineProcessor:
        """A fresh processor for ``shard_id`` (``start()`` must have run)."""
        assert self.keyring is not None and self.dead_letters is not None and self.state is not None
        return PipelineProcessor(
            app=self.config.app,
            keyring=self.keyrings.current if self.keyrings is not None else self.keyring,
            dead_letters=self.dead_letters,
            state=self.state,
            sink_factory=self._shard_sinks,
            classify=classify,
            max_record_age_s=self.config.sinks.max_record_age_s,
            metrics=self.metrics,
            dedup_window=self.config.sinks.dedup_window,
            checkpoint_interval=self.config.kinesis.checkpoint_interval_s,
            monotonic=self.monotonic,
            wall=lambda: self.clock() / 1000,
            health=self.health,
        )


# ---- the applications' sinks -------------------------------------------------------------------


async def catalog_directory(rt: Runtime) -> CatalogDirectory:
    """The catalog cache of this process (the store is opened off the event loop)."""
    cfg = rt.config.catalog

    def build() -> CatalogDirectory:
        store = CatalogStore(cfg.url)
        rt.stack.callback(store.close)
        return CatalogDirectory(store.snapshot, epoch_ms, cfg.refresh_s, version=store.version)

    return await asyncio.to_thread(build)


async def staging_sink(rt: Runtime) -> ReadingSink:
    """Warehouse staging: every accepted reading, enriched, as gzip CSV files in S3."""
    cfg = rt.config
    return S3StagingSink(
        await rt.client("s3"),
        bucket=cfg.sinks.bucket,
        prefix=cfg.warehouse.staging_prefix,
        app=cfg.app,
        stream=cfg.kinesis.stream,
    )


async def stats_sink(rt: Runtime) -> StatsSink:
    """Company Stats: windows per series in DynamoDB, coalesced per flush, fenced by shard position."""
    cfg = rt.config.stats
    store = DynamoStatsStore(await rt.dynamodb(), cfg.table)
    return StatsSink(
        store,
        lateness_s=cfg.lateness_s,
        ttl_months=cfg.ttl_months,
        clock=rt.clock,
        metrics=rt.metrics,
        app=rt.config.app,
        publish_s=cfg.publish_s,
    )


async def alarms_sink(rt: Runtime, directory: CatalogDirectory) -> AlarmsSink:
    """The alarm engine with its DynamoDB state and SNS notifier; rules follow ``directory``."""
    cfg = rt.config
    ddb, sns = await rt.dynamodb(), await rt.client("sns")
    topic = await rt.once(
        "topic", lambda: resolve_topic_arn(sns, cfg.alarms.topic_arn, cfg.alarms.topic_name)
    )
    state = DynamoAlarmStateStore(ddb, table=cfg.alarms.state_table, stream=cfg.kinesis.stream)

    def describe(note: Notification) -> Readable:
        snapshot = directory.snapshot()
        rule = next((r for r in snapshot.rules if r.id == note.rule), None)
        return readable(
            note, series=snapshot.series.get(note.series), rule=rule, link_base=cfg.api.public_url
        )

    notifier = SnsNotifier(
        sns,
        ddb,
        topic_arn=topic,
        table=cfg.alarms.transitions_table,
        stream=cfg.kinesis.stream,
        metrics=rt.metrics,
        describe=describe,
        health=rt.health,
    )
    rules = await asyncio.to_thread(lambda: directory.snapshot().rules)
    return AlarmsSink(
        state,
        notifier,
        rules=rules,
        rules_source=lambda: directory.snapshot().rules,
        idle_tick_s=cfg.alarms.idle_tick_s,
        wall_ms=rt.clock,
    )


ReadingSinkFactory = Callable[[Runtime], Awaitable[ReadingSink]]
# Reading sinks per application, in flush order.
# Stats before staging: a refused stats write then leaves no staged file of the refused batch behind
# (staging keeps what it is given; stats are fenced, so a replay after a staging failure counts nothing twice).
READING_SINKS: dict[str, list[ReadingSinkFactory]] = {"processing": [stats_sink, staging_sink]}


async def reading_sinks(rt: Runtime, app: str) -> list[ReadingSink]:
    """The reading sinks of ``app``, in flush order (quarantine re-drive feeds them directly)."""
    return [await factory(rt) for factory in READING_SINKS.get(app, [])]


async def processing_sinks(rt: Runtime) -> Sequence[BatchSink]:
    """Stats, staging and quarantine behind one enrichment."""
    cfg = rt.config
    quarantine = S3Quarantine(
        await rt.client("s3"),
        bucket=cfg.sinks.bucket,
        prefix="quarantine/",
        app=cfg.app,
        stream=cfg.kinesis.stream,
    )
    sinks = await reading_sinks(rt, "processing")
    return [
        EnrichingSink(
            "processing",
            await rt.once("catalog", lambda: catalog_directory(rt)),
            sinks,
            quarantine=quarantine,
            metrics=rt.metrics,
            app=cfg.app,
        )
    ]


async def alarms_sinks(rt: Runtime) -> Sequence[BatchSink]:
    """The alarm engine behind one enrichment (unmapped readings are the processing application's to quarantine)."""
    directory = await rt.once("catalog", lambda: catalog_directory(rt))
    sinks = [await alarms_sink(rt, directory)]
    return [EnrichingSink("alarms", directory, sinks, quarantine=None, metrics=rt.metrics, app=rt.config.app)]


APP_SINKS: dict[str, SinkFactory] = {"processing": processing_sinks, "alarms": alarms_sinks}


# ---- the API service ---------------------------------------------------------------------------


def api_services(config: Config, *, registry: Any = None) -> ApiServices:
    """The API's services: catalog gateway, authenticator, AWS clients (the web layer gets them built)."""
    import boto3

    from wenu_stream.catalog.store import CatalogStore, parse_url
    from wenu_stream.catalog.workspace import verify_api_key
    from wenu_stream.web.app import ApiServices
    from wenu_stream.web.auth import Authenticator, DevTokens, OidcTokens
    from wenu_stream.web.catalog_access import CatalogGateway

    api = config.api
    parse_url(config.catalog.url)  # a bad URL is a configuration error (exit 2) before anything starts
    gateway = CatalogGateway(
        lambda: CatalogStore(config.catalog.url),
        refresh_ms=int(api.catalog_refresh_s * 1000),
        now_ms=epoch_ms,
    )
    tokens = (
        OidcTokens(api.oidc_issuer, api.oidc_audience, api.jwks_url)
        if api.oidc_issuer
        else DevTokens.from_file(api.dev_secret_file)
    )
    authenticator = Authenticator(
        tokens,
        verify_key=lambda text: gateway.run(lambda s: verify_api_key(s, text)),
        roles_claim=api.roles_claim,
        company_claim=api.company_claim,
    )
    return ApiServices(
        config=config,
        catalog=gateway,
        authenticator=authenticator,
        dynamodb=boto3.client("dynamodb", config=sync_client_config()),
        s3=boto3.client("s3", config=sync_client_config()),
        kinesis=boto3.client("kinesis", config=sync_client_config()),
        registry=registry,
        now_ms=epoch_ms,
    )


def backoffice(config: Config) -> Any:
    """The backoffice pages' settings: OIDC sign-in (or dev tokens), the session key, the operators' re-drives."""
    from pathlib import Path

    import boto3

    from wenu_stream.ops import redrive
    from wenu_stream.web.pages import Backoffice, session_key
    from wenu_stream.web.pages.oidc import OidcClient

    api = config.api
    oidc = OidcClient(api.oidc_issuer, api.oidc_audience) if api.oidc_issuer else None
    dev_secret = None if oidc else Path(api.dev_secret_file).read_bytes()  # api_services created it

    def redrive_letters(app: str, reason: str | None) -> dict[str, Any]:
        import msgspec

        s3, base = boto3.client("s3"), config.sinks.dead_letter_prefix
        objects = list(
            iter_objects(s3, config.sinks.bucket, letter_prefix(base, app, config.kinesis.stream, reason))
        )
        result = redrive.redrive(objects, load_keyring(config), s3=s3, kinesis=boto3.client("kinesis"),
                                 bucket=config.sinks.bucket, stream=config.kinesis.stream, prefix=base)  # fmt: skip
        return dict(msgspec.to_builtins(result))

    def redrive_quarantine() -> dict[str, Any]:
        from wenu_stream.ops.quarantine import redrive as redrive_readings

        processing = config if config.app == "processing" else _with_app(config, "processing")

        async def go() -> dict[str, Any]:
            async with Runtime(processing, keyring=KeyRing.from_keys({}), sinks=_no_sinks) as rt:
                snapshot = (await catalog_directory(rt)).refresh()
                sinks = await reading_sinks(rt, "processing")
                return dict(await redrive_readings(await rt.client("s3"), processing, snapshot, sinks))

        return asyncio.run(go())

    return Backoffice(oidc=oidc, session_key=session_key(config, dev_secret), public_url=api.public_url,
                      redrive_letters=redrive_letters, redrive_quarantine=redrive_quarantine)  # fmt: skip


def _with_app(config: Config, app: str) -> Config:
    import msgspec

    return msgspec.structs.replace(config, app=app)


async def _no_sinks(_rt: Runtime) -> Sequence[BatchSink]:
    return ()


# ---- drivers -----------------------------------------------------------------------------------


def serve_metrics(config: Config, runtime: Runtime) -> Any:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``config.metrics_host:metrics_port``, or None if the port is 0."""
    if not config.metrics_port:
        return None
    from wenu_stream.health import serve
    from wenu_stream.ops.preflight import metrics_bind_error

    try:
        return serve(config.metrics_port, runtime.registry, host=config.metrics_host, health=runtime.health)
    except OSError as exc:
        raise metrics_bind_error(config.metrics_host, config.metrics_port, exc) from exc


class _LazyProcessor:
    """Starts the runtime on first use, inside the caller's event loop (the KCL path has one per process)."""

    def __init__(self, runtime: Runtime, shard_id: str) -> None:
        self._runtime = runtime
        self._inner: PipelineProcessor | None = None

    async def initialize(
        self,
        shard_id: str,
        checkpoint: str | None,
        parent_shard_ids: Sequence[str],
        hash_range: HashRange | None = None,
    ) -> None:
        await self._runtime.start()
        self._inner = self._runtime.processor(shard_id)
        await self._inner.initialize(shard_id, checkpoint, parent_shard_ids, hash_range)

    async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> bool:
        assert self._inner is not None, "initialize() first"
        return await self._inner.process(records, millis_behind_latest)

    async def flush(self) -> str | None:
        assert self._inner is not None, "initialize() first"
        return await self._inner.flush()

    @property
    def settled(self) -> bool:
        return self._inner is None or self._inner.settled

    async def shard_ended(self) -> None:
        assert self._inner is not None, "initialize() first"
        await self._inner.shard_ended()

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def shard_processor_factory(
    config: Config, runtime: Runtime | None = None
) -> Callable[[str], ShardProcessor]:
    """A factory of shard processors for ``config.app``; the runtime starts lazily in the caller's loop."""
    rt = runtime or Runtime(config)
    return lambda shard_id: _LazyProcessor(rt, shard_id)


def kcl_main(app: str) -> None:
    """Entry point of ``consumers/<app>.py``: the KCL protocol driving this application's processors."""
    from wenu_stream.drivers.kcl.adapter import main

    def build(
        config: Config,
    ) -> tuple[Callable[[str], ShardProcessor], Metrics, Callable[[], Coroutine[Any, Any, None]], Health]:
        runtime = Runtime(config)
        return shard_processor_factory(config, runtime), runtime.metrics, runtime.close, runtime.health

    main(app, build=build)
