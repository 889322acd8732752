"""The two consumer applications as Fargate services: task definitions, least-privilege roles, scaling.

Container settings (sizes, environment, health check, logs, stop timeout) come from
``deploy/ecs/task-definition-<app>.json``, the same files an operator can register
with the ECS CLI, so the two never drift; ``${PLACEHOLDERS}`` there are filled here
(``${STAGE}`` with the stage, the others with this stage's resources).

Both read the catalog database with the services' user (``CATALOG_DB_SECRET_JSON``, rotated) and
start only after the deploy's catalog migration (``catalog.Catalog``) succeeded.

Each service has its own task role, granted only what its application calls:
both read the stream, use their own KCL tables, write the state table and their own
dead-letter prefix, and may ``kms:Decrypt`` the key-ring key with its encryption
context; alarms also writes the alarm tables and publishes to the topic; processing
writes the stats table and its staging and quarantine prefixes.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from .catalog import Catalog
from .ingest import Ingest
from .naming import Names
from .network import Network
from .storage import DEAD_LETTER, KEYRING_CONTEXT, QUARANTINE, STAGING, Storage
from .tasks import add_container, container_logs, fargate_task, health_check, log_group, task_role

ECS_DIR = Path(__file__).resolve().parents[2] / "ecs"
METRICS_PORT = 9100
# Leases one task holds, from the memory measured per shard (deploy/ecs/README.md).
SHARDS_PER_TASK = {"alarms": 4, "processing": 4}
# KCL 3.x tables besides the lease table (named after the application).
KCL_TABLE_SUFFIXES = ("", "-WorkerMetricStats", "-CoordinatorState")
KCL_TABLE_ACTIONS = [
    "dynamodb:CreateTable",
    "dynamodb:DescribeTable",
    "dynamodb:UpdateTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Scan",
    "dynamodb:Query",
]
STATE_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"]
ALARM_TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
]
STATS_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:Query",
]


def task_definition_document(app: str) -> dict[str, Any]:
    """The task definition template of ``app`` (``deploy/ecs/task-definition-<app>.json``)."""
    return json.loads((ECS_DIR / f"task-definition-{app}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def scaling_steps(shards_per_task: int, max_tasks: int) -> list[appscaling.ScalingInterval]:
    """Exact task counts by open shard count: [0, n) -> 1 task, [n, 2n) -> 2 tasks, ... capped at max_tasks."""
    steps = [appscaling.ScalingInterval(upper=shards_per_task + 0.5, change=1)]
    for tasks in range(2, max_tasks):
        steps.append(
            appscaling.ScalingInterval(
                lower=(tasks - 1) * shards_per_task + 0.5, upper=tasks * shards_per_task + 0.5, change=tasks
            )
        )
    steps.append(appscaling.ScalingInterval(lower=(max_tasks - 1) * shards_per_task + 0.5, change=max_tasks))
    return steps


class Services(Construct):
    """Cluster, the alarms and processing services, and their roles."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        names: Names,
        network: Network,
        catalog: Catalog,
        storage: Storage,
        ingest: Ingest,
        image: ecs.ContainerImage,
        shard_metric: cloudwatch.IMetric,
        max_shards: int,
        stopped: bool = False,
        api_public_url: str = "",
    ) -> None:
        super().__init__(scope, id)
        self.stopped = stopped
        self.api_public_url = api_public_url  # alarm e-mails link to the backoffice's console
        self.names, self.network, self.catalog = names, network, catalog
        self.vpc, self.cluster = network.vpc, network.cluster
        self.keyring_secret = secretsmanager.Secret(
            self,
            "KeyRing",
            secret_name=names.secret("keyring-kms"),
            description="The KMS-wrapped key-ring document (wenu-keyring-kms-v1); set after deploy",
        )
        self.storage, self.ingest, self.image = storage, ingest, image
        self.roles: dict[str, iam.Role] = {}
        self.services: dict[str, ecs.FargateService] = {}
        self.kcl_tables: dict[str, dynamodb.TableV2] = {}
        for app in ("alarms", "processing"):
            self._kcl_tables(app)
            self.roles[app] = self._task_role(app)
            self.services[app] = self._service(app, shard_metric, max_shards)

    # --- KCL 3's own tables ------------------------------------------------------------------------

    def _kcl_tables(self, app: str) -> None:
        """KCL 3's coordinator-state and worker-metrics tables, created here with PITR and deletion protection.

        The daemon creates them when missing, with deletion protection but without point-in-time recovery
        (KCL 3.1.3 accepts ``coordinatorStatePointInTimeRecoveryEnabled`` and ``workerMetrics...`` and applies
        neither; tests/e2e/test_kcl_stop.py), and uses existing ones whose key matches: ``key`` and ``wid``.
        The lease table itself is the daemon's (``leaseTablePitrEnabled`` works).
        """
        for suffix, key in (("CoordinatorState", "key"), ("WorkerMetricStats", "wid")):
            self.kcl_tables[f"{app}-{suffix}"] = dynamodb.TableV2(
                self,
                f"{app.title()}{suffix}",
                table_name=f"{self.names.lease_table(app)}-{suffix}",
                partition_key=dynamodb.Attribute(name=key, type=dynamodb.AttributeType.STRING),
                billing=dynamodb.Billing.on_demand(),
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                deletion_protection=True,
                removal_policy=RemovalPolicy.RETAIN,
            )

    # --- roles -----------------------------------------------------------------------------------

    def _task_role(self, app: str) -> iam.Role:
        s = self.storage
        role = task_role(
            self,
            f"{app.title()}TaskRole",
            role_name=self.names.task_role(app),
            description=f"wenu-{app} consumer: least privilege for what the application calls",
        )
        self.ingest.stream.grant_read(role)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="KclTables",
                actions=KCL_TABLE_ACTIONS,
                resources=[
                    arn
                    for suffix in KCL_TABLE_SUFFIXES
                    for arn in _table_arns(self, self.names.lease_table(app) + suffix)
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(sid="StateTable", actions=STATE_ACTIONS, resources=[s.state_table.table_arn])
        )
        prefixes = [DEAD_LETTER] if app == "alarms" else [DEAD_LETTER, STAGING, QUARANTINE]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DataObjects",
                actions=["s3:PutObject"],
                resources=[s.data.arn_for_objects(f"{prefix}{app}/*") for prefix in prefixes],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="KeyRing",
                actions=["kms:Decrypt"],
                resources=[s.keyring_key.key_arn],
                conditions={
                    "StringEquals": {f"kms:EncryptionContext:{k}": v for k, v in KEYRING_CONTEXT.items()}
                },
            )
        )
        if app == "alarms":
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="AlarmTables",
                    actions=ALARM_TABLE_ACTIONS,
                    resources=[
                        s.alarm_state_table.table_arn,
                        f"{s.alarm_state_table.table_arn}/index/*",
                        s.transitions_table.table_arn,
                        f"{s.transitions_table.table_arn}/index/*",
                    ],
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="AlarmsTopic", actions=["sns:Publish"], resources=[s.alarms_topic.topic_arn]
                )
            )
        else:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="StatsTable", actions=STATS_ACTIONS, resources=[s.stats_table.table_arn]
                )
            )
        return role

    # --- services --------------------------------------------------------------------------------

    def _service(self, app: str, shard_metric: cloudwatch.IMetric, max_shards: int) -> ecs.FargateService:
        doc = task_definition_document(app)
        spec = doc["containerDefinitions"][0]
        task = fargate_task(
            self,
            f"{app.title()}Task",
            family=self._fill(doc["family"]),
            cpu=int(doc["cpu"]),
            memory_mib=int(doc["memory"]),
            role=self.roles[app],
        )
        assert spec["readonlyRootFilesystem"] and spec["essential"], "add_container's defaults"
        options = spec["logConfiguration"]["options"]
        health = spec["healthCheck"]
        add_container(
            task,
            app,
            image=self.image,
            command=spec["command"],
            user=spec["user"],
            environment={e["name"]: self._fill(e["value"]) for e in spec["environment"]},
            secrets={s["name"]: self._secret(s["valueFrom"]) for s in spec["secrets"]},
            port_mappings=[ecs.PortMapping(name="metrics", container_port=METRICS_PORT)],
            health_check=health_check(
                health["command"],
                interval_s=health["interval"],
                timeout_s=health["timeout"],
                retries=health["retries"],
                start_period_s=health["startPeriod"],
            ),
            stop_timeout=Duration.seconds(spec["stopTimeout"]),
            linux_parameters=ecs.LinuxParameters(self, f"{app.title()}Linux", init_process_enabled=True),
            logging=container_logs(
                log_group(self, f"{app.title()}Logs", self._fill(options["awslogs-group"])),
                stream_prefix=options["awslogs-stream-prefix"],
                non_blocking=True,
                max_buffer_size=_size(options["max-buffer-size"]),
            ),
        )
        metrics_sg = ec2.SecurityGroup(
            self,
            f"{app.title()}Sg",
            vpc=self.vpc,
            allow_all_outbound=True,
            description=f"wenu-{app}: the metrics collector scrapes it",
        )
        metrics_sg.add_ingress_rule(
            self.network.collector_sg, ec2.Port.tcp(METRICS_PORT), "the collector scrapes"
        )
        service = ecs.FargateService(
            self,
            f"{app.title()}Service",
            service_name=self.names.service(app),
            cluster=self.cluster,
            task_definition=task,
            desired_count=0 if self.stopped else 1,
            min_healthy_percent=100,
            max_healthy_percent=200,
            security_groups=[metrics_sg],
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            vpc_subnets=self.network.private,
            cloud_map_options=self.network.discovery(app),  # the metrics collector finds the tasks here
        )
        self.catalog.allow_from(metrics_sg, f"wenu-{app} catalog reads")
        service.node.add_dependency(self.catalog.migration)  # a new image's migrations first
        if (
            self.stopped
        ):  # wenu:consumersStopped: no task and no scaling (the first deploy, before the key ring)
            return service
        per_task = SHARDS_PER_TASK[app]
        max_tasks = max(2, math.ceil(max_shards / per_task))
        scaling = service.auto_scale_task_count(min_capacity=1, max_capacity=max_tasks)
        scaling.scale_on_metric(
            "ByOpenShards",
            metric=shard_metric,
            scaling_steps=scaling_steps(per_task, max_tasks),
            adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
            cooldown=Duration.minutes(5),
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
        )
        return service

    def _secret(self, placeholder: str) -> ecs.Secret:
        secrets = {
            "${CATALOG_SECRET_ARN}": self.catalog.app_secret,
            "${KEYRING_SECRET_ARN}": self.keyring_secret,
        }
        return ecs.Secret.from_secrets_manager(secrets[placeholder])

    def _fill(self, value: str) -> str:
        """``value`` with each ``${NAME}`` replaced; an unknown placeholder is a bug of the JSON file."""
        s = self.storage
        values = {
            "STAGE": self.names.stage,
            "API_PUBLIC_URL": self.api_public_url,
            "STREAM_NAME": self.ingest.stream.stream_name,
            "DATA_BUCKET": s.data.bucket_name,
            "REGION": Stack.of(self).region,
            "ALARMS_TOPIC_ARN": s.alarms_topic.topic_arn,
            "ALARMS_TOPIC_NAME": s.alarms_topic.topic_name,
            "STATE_TABLE": s.state_table.table_name,
            "STATS_TABLE": s.stats_table.table_name,
            "ALARM_STATE_TABLE": s.alarm_state_table.table_name,
            "TRANSITIONS_TABLE": s.transitions_table.table_name,
        }
        return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], value)


def _table_arns(scope: Construct, name: str) -> list[str]:
    arn = Stack.of(scope).format_arn(service="dynamodb", resource="table", resource_name=name)
    return [arn, f"{arn}/index/*"]


def _size(text: str) -> Any:
    from aws_cdk import Size

    assert text.endswith("m"), text
    return Size.mebibytes(int(text[:-1]))
