"""`wenu-stream service pause|resume --app A`: an application's ECS service stopped for a replay, and back.

``pause`` suspends the service's scaling, sets its desired count to 0 (remembering the count), and waits
until ECS runs none of its tasks and every lease of the application is free, so that ``checkpoints
reset`` may run. ``resume`` restores the count and the scaling. The service is ``--service``, by default
the application's lease-table name (``wenu-<stage>-<app>`` in the stack, from WENU_LEASE_TABLE); the
cluster is ``--cluster`` (stack output ``Cluster``). Prints a JSON summary.
Exit codes: 0 done, 1 the service did not stop or leases are still renewed in time, 2 bad arguments,
4 no such service.
"""

from __future__ import annotations

import argparse

from wenu_stream.cli.common import add_config_flags, config_from
from wenu_stream.cli.output import emit_one


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "service", help="pause or resume an application's ECS service", description=__doc__
    )
    sub = p.add_subparsers(dest="service_command", required=True)
    for name, handler, text in (
        ("pause", run_pause, "suspend scaling, stop every task, wait until the leases are free"),
        ("resume", run_resume, "restore the task count and the scaling"),
    ):
        q = sub.add_parser(name, help=text)
        q.add_argument("--cluster", required=True, help="the stage's ECS cluster (stack output Cluster)")
        q.add_argument(
            "--service", default=None, help="the ECS service (default: the application's lease table)"
        )
        add_config_flags(q, "--app")
        if name == "pause":
            q.add_argument("--timeout", type=float, default=600.0, metavar="S", help="seconds to wait (600)")
        q.set_defaults(handler=handler, default_output="json")


def run_pause(args: argparse.Namespace) -> int:
    import boto3

    from wenu_stream.ops.service import pause

    config = config_from(args)
    summary = pause(
        boto3.client("ecs"),
        boto3.client("application-autoscaling"),
        boto3.client("dynamodb"),
        cluster=args.cluster,
        service=args.service or config.lease_table,
        lease_table=config.lease_table,
        failover_ms=config.lease.failover_ms,
        timeout_s=args.timeout,
    )
    emit_one(summary, args.output)
    return 0


def run_resume(args: argparse.Namespace) -> int:
    import boto3

    from wenu_stream.ops.service import resume

    config = config_from(args)
    summary = resume(
        boto3.client("ecs"),
        boto3.client("application-autoscaling"),
        cluster=args.cluster,
        service=args.service or config.lease_table,
    )
    emit_one(summary, args.output)
    return 0
