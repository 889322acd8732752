"""The two applications' stages, wired from the runtime's clients (part of the composition root).

- processing: enrich once -> Company Stats (DynamoDB) and warehouse staging (S3);
  unmapped readings -> quarantine (S3).
- alarms: enrich once -> alarm engine -> alarm state (DynamoDB) -> notifications (SNS).
- api: the web service's catalog gateway, authenticator and AWS clients (``api_services``).
Dead letters and the shard state are common to both and wired by ``runtime``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from wenu_stream.config import Config
from wenu_stream.ports import BatchSink

if TYPE_CHECKING:
    from wenu_stream.catalog.directory import CatalogDirectory
    from wenu_stream.runtime import Runtime
    from wenu_stream.web.app import ApiServices


def epoch_ms() -> int:
    return int(time.time() * 1000)


async def catalog_directory(rt: Runtime) -> CatalogDirectory:
    """The catalog cache of this process (the store is opened off the event loop)."""
    from wenu_stream.catalog.directory import CatalogDirectory
    from wenu_stream.catalog.store import CatalogStore

    cfg = rt.config.catalog

    def build() -> CatalogDirectory:
        store = CatalogStore(cfg.url)
        rt.stack.callback(store.close)
        return CatalogDirectory(store.snapshot, epoch_ms, cfg.refresh_s, version=store.version)

    return await asyncio.to_thread(build)


async def processing_sinks(rt: Runtime) -> Sequence[BatchSink]:
    """Stats, staging and quarantine behind one enrichment."""
    from wenu_stream.sinks.enriched import EnrichingSink
    from wenu_stream.sinks.quarantine import S3Quarantine

    cfg = rt.config
    s3 = await rt.client("s3")
    quarantine = S3Quarantine(s3, bucket=cfg.sinks.bucket, prefix="quarantine/", app=cfg.app, stream=cfg.kinesis.stream)
    reading_sinks = [factory(rt) for factory in READING_SINKS["processing"]]
    sinks = [await s for s in reading_sinks]
    return [EnrichingSink("processing", await catalog_directory(rt), sinks, quarantine=quarantine,
                          metrics=rt.metrics, app=cfg.app)]


async def alarms_sinks(rt: Runtime) -> Sequence[BatchSink]:
    """The alarm engine behind one enrichment (unmapped readings are the processing application's to quarantine)."""
    from wenu_stream.sinks.alarms import alarms_sink
    from wenu_stream.sinks.enriched import EnrichingSink

    directory = await catalog_directory(rt)
    sinks = [await alarms_sink(rt, directory)]
    return [EnrichingSink("alarms", directory, sinks, quarantine=None, metrics=rt.metrics, app=rt.config.app)]


async def staging_sink(rt: Runtime) -> object:
    """Warehouse staging: every accepted reading, enriched, as gzip CSV files in S3."""
    from wenu_stream.warehouse.staging import S3StagingSink

    cfg = rt.config
    return S3StagingSink(await rt.client("s3"), bucket=cfg.sinks.bucket, prefix=cfg.warehouse.staging_prefix,
                         app=cfg.app, stream=cfg.kinesis.stream)


async def stats_sink(rt: Runtime) -> object:
    """Company Stats: windows per series in DynamoDB, coalesced per flush, fenced by shard position."""
    from wenu_stream.sinks.stats import DynamoStatsSink

    cfg = rt.config.stats
    return DynamoStatsSink(await rt.client("dynamodb"), table=cfg.table, lateness_s=cfg.lateness_s,
                           ttl_months=cfg.ttl_months, clock=epoch_ms, metrics=rt.metrics, app=rt.config.app)


ReadingSinkFactory = Callable[["Runtime"], Awaitable[object]]
# Reading sinks per application, in flush order.
READING_SINKS: dict[str, list[ReadingSinkFactory]] = {"processing": [staging_sink, stats_sink]}
APP_SINKS: dict[str, Callable[[Runtime], Awaitable[Sequence[BatchSink]]]] = {
    "processing": processing_sinks,
    "alarms": alarms_sinks,
}


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
    gateway = CatalogGateway(lambda: CatalogStore(config.catalog.url), refresh_ms=int(api.catalog_refresh_s * 1000),
                             now_ms=epoch_ms)
    tokens = OidcTokens(api.oidc_issuer, api.oidc_audience, api.jwks_url) if api.oidc_issuer else \
        DevTokens.from_file(api.dev_secret_file)
    authenticator = Authenticator(tokens, verify_key=lambda text: gateway.run(lambda s: verify_api_key(s, text)),
                                  roles_claim=api.roles_claim, company_claim=api.company_claim)
    return ApiServices(config=config, catalog=gateway, authenticator=authenticator,
                       dynamodb=boto3.client("dynamodb"), s3=boto3.client("s3"), kinesis=boto3.client("kinesis"),
                       registry=registry, now_ms=epoch_ms)
