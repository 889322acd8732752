"""What ``run --app A`` needs, checked before any side effect (``check-config --app A`` runs the same checks).

In this order, each a read that changes nothing (sync boto3 clients passed in):

1. the metrics address, when a port is set: bound and released at once (a bad host or a port in use);
2. the catalog: the store exists (a wrong SQLite path is not created) and holds at least one company;
3. the stream (``DescribeStreamSummary``), the bucket (``HeadBucket``), the tables of the application
   (``DescribeTable``: the shard state table for both, the stats table for processing, the alarm state
   and transitions tables for alarms) and, for alarms, the SNS topic.

A missing resource is a ``ConfigError`` naming its setting (exit 2); an AWS error that is not about the
resource (no region, no credentials, access denied, unreachable) propagates for the CLI to explain. The
lease table is not checked: the worker creates it.
"""

from __future__ import annotations

import errno
import functools
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import ClientError

from wenu_stream.config import Config, env_name
from wenu_stream.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_kinesis.client import KinesisClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sns.client import SNSClient

_MISSING = {"ResourceNotFoundException", "NoSuchBucket", "NotFound", "404", "NotFoundException"}


class Ready(NamedTuple):
    """One check that passed: what, and the resource it found."""

    setting: str
    found: str


def check_app(
    config: Config,
    *,
    kinesis: KinesisClient,
    s3: S3Client,
    dynamodb: DynamoDBClient,
    sns: SNSClient,
    catalog_companies: Callable[[], int] | None = None,
) -> list[Ready]:
    """Check everything ``config.app`` needs; return what was found, or raise ``ConfigError`` at the first gap.

    Args:
        catalog_companies: counts the catalog's companies, raising ``ConfigError`` when the store is missing
            (default: :func:`count_companies` of ``catalog.url``).
    """
    out: list[Ready] = []
    if config.metrics_port:
        out.append(check_bind(config.metrics_host, config.metrics_port))
    companies = (catalog_companies or (lambda: count_companies(config.catalog.url)))()
    if companies < 1:
        raise ConfigError(
            f"{env_name('catalog.url')} = {config.catalog.url}",
            "the catalog holds no company: every reading would be quarantined",
            "import one with `wenu-stream catalog import FILE`, or point the setting at the catalog in use",
        )
    out.append(Ready(env_name("catalog.url"), f"{companies} companies"))
    stream = config.kinesis.stream
    summary = _exists(
        lambda: kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"],
        "kinesis.stream",
        stream,
        "Kinesis stream",
    )
    out.append(Ready(env_name("kinesis.stream"), f"{stream} ({summary['StreamStatus']})"))
    bucket = config.sinks.bucket
    _exists(lambda: s3.head_bucket(Bucket=bucket), "sinks.bucket", bucket, "S3 bucket")
    out.append(Ready(env_name("sinks.bucket"), bucket))
    for leaf in tables_of(config.app):
        name = _leaf_value(config, leaf)
        _exists(functools.partial(dynamodb.describe_table, TableName=name), leaf, name, "DynamoDB table")
        out.append(Ready(env_name(leaf), name))
    if config.app == "alarms":
        out.append(_topic(config, sns))
    return out


def count_companies(url: str) -> int:
    """The companies of the catalog at ``url``; a SQLite file that does not exist is a ``ConfigError`` (never created)."""
    from wenu_stream.catalog.store import CatalogStore

    with CatalogStore(url, create=False) as store:
        return len(store.export_document().companies)


def tables_of(app: str) -> tuple[str, ...]:
    """The settings of the DynamoDB tables ``app`` writes (the lease table aside: the worker creates it)."""
    if app == "alarms":
        return ("sinks.state_table", "alarms.state_table", "alarms.transitions_table")
    return ("sinks.state_table", "stats.table")


def check_bind(host: str, port: int) -> Ready:
    """Bind ``host:port`` and release it: a bad host or a port in use is a ``ConfigError`` now, not a traceback
    after the worker started."""
    try:
        with socket.create_server((host, port), reuse_port=False):
            pass
    except OSError as exc:
        raise metrics_bind_error(host, port, exc) from exc
    return Ready("WENU_METRICS_HOST/PORT", f"{host}:{port}")


def metrics_bind_error(host: str, port: int, exc: OSError) -> ConfigError:
    """The ``ConfigError`` for an address the metrics endpoint cannot bind (bad host, port in use)."""
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return ConfigError(
            f"WENU_METRICS_HOST = {host!r}",
            f"not an address of this machine ({exc.strerror or exc})",
            "use 127.0.0.1 (the default) or 0.0.0.0 in a container",
        )
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(
            f"WENU_METRICS_PORT = {port}",
            f"port {port} is in use on {host}",
            "pick a free port, or 0 to serve no metrics endpoint",
        )
    return ConfigError(
        f"WENU_METRICS_HOST/PORT = {host}:{port}", f"cannot listen there ({exc})", "pick another"
    )


def _topic(config: Config, sns: SNSClient) -> Ready:
    arn, name = config.alarms.topic_arn, config.alarms.topic_name
    if arn:
        _exists(lambda: sns.get_topic_attributes(TopicArn=arn), "alarms.topic_arn", arn, "SNS topic")
        return Ready(env_name("alarms.topic_arn"), arn)
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page.get("Topics", []):
            if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                return Ready(env_name("alarms.topic_name"), str(topic["TopicArn"]))
    raise ConfigError(
        f"{env_name('alarms.topic_name')} = {name}",
        f"no SNS topic named {name!r}",
        "create it with `wenu-stream provision`, or set WENU_ALARMS_TOPIC_ARN",
    )


def _exists(call: Callable[[], Any], leaf: str, value: str, what: str) -> Any:
    """``call()``; a not-found answer becomes the ``ConfigError`` of setting ``leaf`` (its ``value``, a ``what``)."""
    try:
        return call()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if str(error.get("Code")) in _MISSING or status == 404:
            raise ConfigError(
                f"{env_name(leaf)} = {value}",
                f"no {what} {value!r}",
                "create it with `wenu-stream provision`, or point the setting at the one in use",
            ) from None
        raise


def _leaf_value(config: Config, leaf: str) -> str:
    node: Any = config
    for part in leaf.split("."):
        node = getattr(node, part)
    return str(node)
