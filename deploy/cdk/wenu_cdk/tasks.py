"""What every ECS task of the stack shares, written once.

Fargate on x86-64 Linux; a task role ECS tasks assume; a read-only root file
system with a writable ``/tmp`` volume; container logs in a CloudWatch group of
the stage (deleted with the stack, kept for ``retention``); the health check's
timing. Construct ids are the caller's, so the synthesised templates keep their
logical ids.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

TMP = "tmp"  # the task volume every container mounts at /tmp (the root file system is read-only)


def task_role(scope: Construct, id: str, *, role_name: str, description: str) -> iam.Role:
    """A role for ECS tasks to assume (its policies are added by the caller, least privilege)."""
    return iam.Role(
        scope,
        id,
        role_name=role_name,
        assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        description=description,
    )


def fargate_task(
    scope: Construct, id: str, *, family: str, cpu: int, memory_mib: int, role: iam.IRole | None = None
) -> ecs.FargateTaskDefinition:
    """A Fargate task definition on x86-64 Linux with the ``/tmp`` volume (:func:`add_container` mounts it)."""
    task = ecs.FargateTaskDefinition(
        scope,
        id,
        family=family,
        cpu=cpu,
        memory_limit_mib=memory_mib,
        task_role=role,
        runtime_platform=ecs.RuntimePlatform(
            cpu_architecture=ecs.CpuArchitecture.X86_64,
            operating_system_family=ecs.OperatingSystemFamily.LINUX,
        ),
    )
    task.add_volume(name=TMP)
    return task


def add_container(
    task: ecs.FargateTaskDefinition, name: str, *, logging: ecs.LogDriver, **props: Any
) -> ecs.ContainerDefinition:
    """An essential container with a read-only root file system and ``/tmp`` mounted; ``props`` as CDK's."""
    container = task.add_container(
        name, logging=logging, essential=True, readonly_root_filesystem=True, **props
    )
    container.add_mount_points(ecs.MountPoint(source_volume=TMP, container_path="/tmp", read_only=False))
    return container


def log_group(
    scope: Construct, id: str, name: str, retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
) -> logs.LogGroup:
    """A named log group of the stage, deleted with the stack."""
    return logs.LogGroup(
        scope, id, log_group_name=name, retention=retention, removal_policy=RemovalPolicy.DESTROY
    )


def container_logs(
    group: logs.ILogGroup,
    *,
    stream_prefix: str = "wenu",
    non_blocking: bool = False,
    max_buffer_size: Any = None,
) -> ecs.LogDriver:
    """The awslogs driver into ``group`` (``non_blocking``: a full log buffer drops lines, never blocks)."""
    return ecs.LogDrivers.aws_logs(
        stream_prefix=stream_prefix,
        log_group=group,
        mode=ecs.AwsLogDriverMode.NON_BLOCKING if non_blocking else None,
        max_buffer_size=max_buffer_size,
    )


def health_check(
    command: list[str],
    *,
    interval_s: int = 30,
    timeout_s: int = 5,
    retries: int = 3,
    start_period_s: int = 30,
) -> ecs.HealthCheck:
    """A container health check (``CMD`` form), every ``interval_s`` once ``start_period_s`` has passed."""
    return ecs.HealthCheck(
        command=command,
        interval=Duration.seconds(interval_s),
        timeout=Duration.seconds(timeout_s),
        retries=retries,
        start_period=Duration.seconds(start_period_s),
    )
