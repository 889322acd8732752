"""What every handler of the web service shares: the injected services, the caller, and running blocking code.

Kept apart from ``app`` so route modules and the app factory import it without importing each other.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
from litestar.connection import ASGIConnection
from prometheus_client import CollectorRegistry, Counter, Histogram

from wenu_stream.config import Config
from wenu_stream.web.auth import Authenticator, Principal
from wenu_stream.web.catalog_access import CatalogGateway

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_kinesis.client import KinesisClient
    from mypy_boto3_s3.client import S3Client

T = TypeVar("T")


class ApiServices:
    """Everything the handlers use, built by the caller (composition root or test)."""

    def __init__(
        self,
        *,
        config: Config,
        catalog: CatalogGateway,
        authenticator: Authenticator,
        dynamodb: DynamoDBClient,
        s3: S3Client,
        kinesis: KinesisClient,
        registry: CollectorRegistry | None = None,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.authenticator = authenticator
        self.dynamodb = dynamodb
        self.s3 = s3
        self.kinesis = kinesis
        self.registry = registry or CollectorRegistry()
        self.now_ms = now_ms
        self.requests = Counter(
            "wenu_api_requests",
            "API requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "wenu_api_request_seconds",
            "API request latency by route",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )


def services_of(request: ASGIConnection[Any, Any, Any, Any]) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


def principal_of(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user: Principal = request.user
    return user


def threaded(fn: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """Run a blocking handler (catalog store, boto3) in a worker thread; Litestar sees an async handler."""

    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    return run
