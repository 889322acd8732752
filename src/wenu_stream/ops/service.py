"""An application's ECS service paused for a replay, and resumed (``wenu-stream service pause|resume``).

Scaling the service to 0 by hand fights the autoscaler (the shard-count policy keeps at least one task),
and a worker that stops does not free its leases at once. So:

pause
  1. suspend the service's scaling: Application Auto Scaling keeps the target and its policies, they
     just do not act (in, out, scheduled);
  2. remember the desired count as the service's tag ``wenu:paused-desired-count``, then set it to 0;
  3. wait until ECS runs no task of the service, then until every lease of the application is free:
     no owner, or a counter that did not move for ``failover_ms`` (an owner that stopped renewing it).
     Only then may ``checkpoints reset`` run (it refuses while leases are held).

resume
  1. set the desired count back (the tag; else the scalable target's minimum);
  2. resume scaling (the policy then follows the shard count again).

Both are idempotent: pausing a paused service only waits again, resuming a running one changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from wenu_stream.drivers.native.leases import read_leases
from wenu_stream.errors import NotFoundError, WenuError

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling.client import ApplicationAutoScalingClient
    from mypy_boto3_application_autoscaling.type_defs import ScalableTargetTypeDef, SuspendedStateTypeDef
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_ecs.client import ECSClient
    from mypy_boto3_ecs.type_defs import ServiceTypeDef

TAG = "wenu:paused-desired-count"
DIMENSION: Final = "ecs:service:DesiredCount"
SUSPENDED: SuspendedStateTypeDef = {
    "DynamicScalingInSuspended": True,
    "DynamicScalingOutSuspended": True,
    "ScheduledScalingSuspended": True,
}
RESUMED: SuspendedStateTypeDef = {
    "DynamicScalingInSuspended": False,
    "DynamicScalingOutSuspended": False,
    "ScheduledScalingSuspended": False,
}


class PauseIncomplete(WenuError):
    """The service did not stop, or leases are still renewed, within the time allowed."""


def describe(ecs: ECSClient, cluster: str, service: str) -> ServiceTypeDef:
    """The ECS service, or NotFoundError naming the fix."""
    found = ecs.describe_services(cluster=cluster, services=[service]).get("services", [])
    active = [s for s in found if s.get("status") == "ACTIVE"]
    if not active:
        raise NotFoundError(
            f"ECS service {service!r} in cluster {cluster!r}",
            "pass --cluster (stack output Cluster) and --service (wenu-<stage>-<app>, the default with the "
            "stage's WENU_LEASE_TABLE)",
        )
    return active[0]


def _resource(cluster: str, service: str) -> str:
    return f"service/{cluster}/{service}"


def _target(
    scaling: ApplicationAutoScalingClient, cluster: str, service: str
) -> ScalableTargetTypeDef | None:
    targets = scaling.describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[_resource(cluster, service)], ScalableDimension=DIMENSION
    ).get("ScalableTargets", [])
    return targets[0] if targets else None


def _suspend(
    scaling: ApplicationAutoScalingClient, cluster: str, service: str, state: SuspendedStateTypeDef
) -> bool:
    """Set the scalable target's suspended state; False when the service has no scalable target."""
    if _target(scaling, cluster, service) is None:
        return False
    scaling.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=_resource(cluster, service),
        ScalableDimension=DIMENSION,
        SuspendedState=state,
    )
    return True


def pause(
    ecs: ECSClient,
    scaling: ApplicationAutoScalingClient,
    ddb: DynamoDBClient,
    *,
    cluster: str,
    service: str,
    lease_table: str,
    failover_ms: int,
    timeout_s: float = 600.0,
    poll_s: float = 1.0,
    sleep: Callable[[float], Any] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Stop the service's tasks and wait for its leases to be free (module docstring); what was done."""
    current = describe(ecs, cluster, service)
    suspended = _suspend(scaling, cluster, service, SUSPENDED)
    desired = int(current.get("desiredCount", 0))
    if desired > 0:  # a paused service keeps the count it had before the first pause
        ecs.tag_resource(resourceArn=current["serviceArn"], tags=[{"key": TAG, "value": str(desired)}])
        ecs.update_service(cluster=cluster, service=service, desiredCount=0)
    deadline = monotonic() + timeout_s
    while int(describe(ecs, cluster, service).get("runningCount", 0)) > 0:
        if monotonic() > deadline:
            raise PauseIncomplete(f"{service} still runs tasks after {timeout_s:.0f} s; look at its events")
        sleep(poll_s)
    held = wait_leases_free(
        ddb, lease_table, failover_ms, deadline, poll_s=poll_s, sleep=sleep, monotonic=monotonic
    )
    if held:
        raise PauseIncomplete(
            f"leases {', '.join(held)} of {lease_table} are still renewed: another worker runs (another task, "
            "a laptop?); stop it and pause again"
        )
    return {
        "service": service,
        "desired_before": desired,
        "scaling_suspended": suspended,
        "leases_free": True,
    }


def wait_leases_free(
    ddb: DynamoDBClient,
    table: str,
    failover_ms: int,
    deadline: float,
    *,
    poll_s: float = 1.0,
    sleep: Callable[[float], Any] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> list[str]:
    """Wait until every lease has no owner or a counter unchanged for ``failover_ms``; the keys still held."""
    seen: dict[str, tuple[int, float]] = {}  # lease key -> (counter, when first seen at that counter)
    while True:
        now = monotonic()
        held = []
        for lease in read_leases(table, ddb):
            if not lease.lease_owner:
                continue
            counter, since = seen.get(lease.lease_key, (-1, now))
            if counter != lease.lease_counter:
                seen[lease.lease_key] = (lease.lease_counter, now)
                since = now
            if (now - since) * 1000 < failover_ms:
                held.append(lease.lease_key)
        if not held or now > deadline:
            return held
        sleep(poll_s)


def resume(
    ecs: ECSClient, scaling: ApplicationAutoScalingClient, *, cluster: str, service: str
) -> dict[str, Any]:
    """Give the service its desired count back, then resume its scaling; what was done."""
    current = describe(ecs, cluster, service)
    tags = {
        t["key"]: t["value"]
        for t in ecs.list_tags_for_resource(resourceArn=current["serviceArn"]).get("tags", [])
    }
    target = _target(scaling, cluster, service)
    desired = int(tags.get(TAG) or (target["MinCapacity"] if target else 1))
    if int(current.get("desiredCount", 0)) == 0:
        ecs.update_service(cluster=cluster, service=service, desiredCount=desired)
    if TAG in tags:
        ecs.untag_resource(resourceArn=current["serviceArn"], tagKeys=[TAG])
    resumed = _suspend(scaling, cluster, service, RESUMED)
    return {"service": service, "desired": desired, "scaling_resumed": resumed}
