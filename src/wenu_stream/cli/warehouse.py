"""`wenu-stream warehouse load|status`: load staged readings into the warehouse, each manifest exactly once."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.cli.output import emit_one
from wenu_stream.config import Config, env_name
from wenu_stream.errors import ConfigError, WenuError

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client

    from wenu_stream.warehouse.loader import WarehouseTarget


T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "warehouse", help="load staged readings into the warehouse; loader status", description=__doc__
    )
    sub = p.add_subparsers(dest="warehouse_command", required=True)
    load = sub.add_parser("load", help="group pending staged files into manifests and load each once")
    status = sub.add_parser("status", help="pending files, loaded manifests and readings")
    for parser in (load, status):
        add_config_flags(parser, "--bucket", "--log-level")
        parser.add_argument(
            "--target",
            dest="cfg:warehouse.target",
            choices=("postgres", "redshift"),
            default=None,
            help=f"warehouse: postgres or redshift [env: {env_name('warehouse.target')}]",
        )
        parser.add_argument(
            "--dsn",
            dest="cfg:warehouse.dsn",
            default=None,
            metavar="DSN",
            help=f"PostgreSQL DSN postgresql://user:password@host:port/db [env: {env_name('warehouse.dsn')}]",
        )
    load.add_argument(
        "--pushgateway",
        dest="cfg:warehouse.pushgateway",
        default=None,
        metavar="URL",
        help="push the run's metrics to this Prometheus Pushgateway, e.g. http://pushgateway:9091 "
        f"[env: {env_name('warehouse.pushgateway')}]",
    )
    load.set_defaults(handler=run_load, default_output="json")
    status.set_defaults(handler=run_status, default_output="json")


def check(config: Config) -> None:
    """Refuse a target that lacks its settings (exit 2, before any side effect)."""
    cfg = config.warehouse
    if cfg.target == "postgres" and not cfg.dsn:
        raise ConfigError(
            f"warehouse.dsn (env {env_name('warehouse.dsn')} or --dsn)",
            "no PostgreSQL DSN",
            "set it to postgresql://user:password@host:5432/database",
        )
    if cfg.target == "redshift":
        if not (cfg.redshift_cluster or cfg.redshift_workgroup):
            raise ConfigError(
                f"{env_name('warehouse.redshift_cluster')} or {env_name('warehouse.redshift_workgroup')}",
                "no Redshift cluster or serverless workgroup",
                "set one of them",
            )
        if not cfg.redshift_iam_role:
            raise ConfigError(
                env_name("warehouse.redshift_iam_role"),
                "no IAM role for COPY",
                "set the ARN of a role attached to the cluster that can read the bucket",
            )
        if cfg.redshift_cluster and not (cfg.redshift_db_user or cfg.redshift_secret_arn):
            raise ConfigError(
                f"{env_name('warehouse.redshift_db_user')} or {env_name('warehouse.redshift_secret_arn')}",
                "no credentials for the cluster",
                "set a database user or a Secrets Manager ARN",
            )


@contextlib.asynccontextmanager
async def open_target(config: Config) -> AsyncIterator[tuple[S3Client, WarehouseTarget]]:
    """An S3 client and the configured warehouse target, closed on exit."""
    from aiobotocore.session import get_session

    from wenu_stream.warehouse.loader import PostgresTarget, RedshiftTarget

    session, cfg = get_session(), config.warehouse
    async with contextlib.AsyncExitStack() as stack:
        s3 = await stack.enter_async_context(session.create_client("s3"))
        if cfg.target == "redshift":
            client = await stack.enter_async_context(session.create_client("redshift-data"))
            yield s3, RedshiftTarget(client, bucket=config.sinks.bucket, config=cfg)
            return
        import psycopg

        conn = await psycopg.AsyncConnection.connect(cfg.dsn, autocommit=True)
        stack.push_async_callback(conn.close)
        yield s3, PostgresTarget(conn, s3, bucket=config.sinks.bucket, schema=cfg.schema)


def _run(config: Config, job: Callable[[S3Client, WarehouseTarget], Awaitable[T]]) -> T:
    """Run ``job(s3, target)``; an outage becomes a ``WarehouseError`` (exit 1) that says the ledger is safe."""
    import psycopg
    from botocore.exceptions import BotoCoreError, ClientError

    from wenu_stream.log import configure_logging
    from wenu_stream.warehouse.loader import WarehouseError

    configure_logging(config.log_level)

    async def go() -> T:
        async with open_target(config) as (s3, target):
            return await job(s3, target)

    try:
        return asyncio.run(go())
    except (psycopg.Error, BotoCoreError, ClientError, OSError) as exc:
        raise WarehouseError(
            f"warehouse {config.warehouse.target}: {exc!r}. Manifests not loaded stay pending "
            "(their transactions rolled back); run `wenu-stream warehouse load` again"
        ) from exc


def run_load(args: argparse.Namespace) -> int:
    from wenu_stream.warehouse.loader import load_pending

    config = config_from(args)
    check(config)
    try:
        summary = _run(
            config,
            lambda s3, target: load_pending(s3, target, bucket=config.sinks.bucket, config=config.warehouse),
        )
    except WenuError:
        _push(config, None)
        raise
    emit_one(msgspec.to_builtins(summary), args.output)
    _push(config, summary)
    return 0


def _push(config: Config, summary: Any) -> None:
    """Push the run's metrics when a Pushgateway is configured; a push failure is reported, not fatal."""
    if not config.warehouse.pushgateway:
        return
    from wenu_stream.warehouse.metrics import push, run_registry

    try:
        push(config.warehouse.pushgateway, config.warehouse.target, run_registry(summary, now_s=time.time()))
    except OSError as exc:
        sys.stderr.write(
            f"wenu-stream: warning: metrics not pushed to {config.warehouse.pushgateway}: {exc!r} "
            "(the load itself is unaffected)\n"
        )


def run_status(args: argparse.Namespace) -> int:
    from wenu_stream.warehouse.loader import status

    config = config_from(args)
    check(config)
    emit_one(
        _run(
            config, lambda s3, target: status(s3, target, bucket=config.sinks.bucket, config=config.warehouse)
        ),
        args.output,
    )
    return 0
