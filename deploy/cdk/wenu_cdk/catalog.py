"""The catalog database: RDS PostgreSQL, its two rotated secrets, and a migration once per deploy.

- **Instance** ``wenu-<stage>-catalog`` in the private subnets, TLS forced (``rds.force_ssl``),
  encrypted, 7 days of backups, deletion protection, snapshot on removal, logs to CloudWatch.
- **Secrets** (RDS secret JSON): the owner (master user ``wenu_owner``, ``wenu/<stage>/catalog-owner``,
  single-user rotation) used only by the migration, and the services' user (``wenu_app``,
  ``wenu/<stage>/catalog-app``, multi-user rotation: ``wenu_app`` and ``wenu_app_clone`` take turns, so
  a task started before a rotation keeps working until the next one). Tasks get the JSON as the ECS
  secret ``CATALOG_DB_SECRET_JSON``; ``deploy/ecs/entrypoint.sh`` composes ``WENU_CATALOG_URL`` from it.
- **Migration** ``wenu-<stage>-catalog-migrate``: a one-off Fargate task of the same image running
  ``deploy/ecs/catalog_db.py migrate`` (create ``wenu_app`` if missing, apply the catalog's migrations,
  grant DML only), started by a custom resource that waits for its exit code.

Why a one-off ECS task behind a custom resource (and not a Lambda custom resource running the SQL):
the migrations live in the image (``wenu_stream.catalog.store``), so the task runs exactly the code of
the release being deployed, with its dependencies and no second package to build; the task has no
15-minute limit; and the custom resource makes the deploy wait for the exit code. The consumer and
API services depend on it, so they move to a new image only after its migrations succeeded, and a
failed migration rolls the deploy back. The resource's properties name the task definition revision:
each new image runs the migration once; a deploy that changes nothing in the image does not.
Migrations must be expand-only while old tasks still run (as the catalog's are: new tables, new rows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CustomResource, Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import custom_resources as cr
from constructs import Construct

from .naming import Names
from .network import Network
from .tasks import add_container, container_logs, fargate_task, log_group

DATABASE = "wenu_catalog"
OWNER = "wenu_owner"
APP_USER = "wenu_app"
PORT = 5432
ROTATION = Duration.days(30)
RUNNER = Path(__file__).with_name("run_task_handler.py")


class Catalog(Construct):
    """``instance``, ``owner_secret``, ``app_secret``, ``migration`` (the custom resource) and ``allow_from``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        names: Names,
        network: Network,
        image: ecs.ContainerImage,
        instance_type: str = "t4g.small",
        multi_az: bool = False,
    ) -> None:
        super().__init__(scope, id)
        self.names, self.network = names, network
        self.security_group = ec2.SecurityGroup(
            self,
            "Sg",
            vpc=network.vpc,
            allow_all_outbound=False,
            description=f"{names('catalog')}: PostgreSQL from the tasks of the stage only",
        )
        parameters = rds.ParameterGroup(
            self,
            "Parameters",
            engine=self._engine(),
            parameters={"rds.force_ssl": "1", "log_min_duration_statement": "1000"},
            description="wenu catalog: TLS only, statements slower than 1 s logged",
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            instance_identifier=names("catalog"),
            engine=self._engine(),
            instance_type=ec2.InstanceType(instance_type),
            vpc=network.vpc,
            vpc_subnets=network.private,
            security_groups=[self.security_group],
            port=PORT,
            database_name=DATABASE,
            credentials=rds.Credentials.from_secret(
                rds.DatabaseSecret(  # with dbname: a complete RDS secret for the migration
                    self,
                    "OwnerSecret",
                    username=OWNER,
                    dbname=DATABASE,
                    secret_name=names.secret("catalog-owner"),
                )
            ),
            parameter_group=parameters,
            allocated_storage=20,
            max_allocated_storage=200,
            storage_type=rds.StorageType.GP3,
            storage_encrypted=True,
            multi_az=multi_az,
            backup_retention=Duration.days(7),
            deletion_protection=True,
            removal_policy=RemovalPolicy.SNAPSHOT,
            auto_minor_version_upgrade=True,
            publicly_accessible=False,
            cloudwatch_logs_exports=["postgresql"],
            enable_performance_insights=True,
        )
        # RDS would create its log group without retention; created here first (no LogRetention function).
        self.instance.node.add_dependency(
            logs.LogGroup(
                self,
                "InstanceLogs",
                log_group_name=f"/aws/rds/instance/{names('catalog')}/postgresql",
                retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=RemovalPolicy.DESTROY,
            )
        )
        assert self.instance.secret is not None
        self.owner_secret = self.instance.secret
        self.app_secret = rds.DatabaseSecret(
            self,
            "AppSecret",
            username=APP_USER,
            dbname=DATABASE,
            secret_name=names.secret("catalog-app"),
            master_secret=self.owner_secret,
        ).attach(self.instance)
        self.instance.add_rotation_single_user(automatically_after=ROTATION)
        self.app_rotation = self.instance.add_rotation_multi_user(
            "AppRotation", secret=self.app_secret, automatically_after=ROTATION
        )
        self.migration = self._migration(image)
        # The first rotation of the services' user needs the role the migration creates.
        self.app_rotation.node.add_dependency(self.migration)

    @staticmethod
    def _engine() -> rds.IInstanceEngine:
        return rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_9)

    def allow_from(self, peer: ec2.IConnectable, description: str) -> None:
        """Let ``peer`` (a service's security group) connect to the database."""
        self.instance.connections.allow_default_port_from(peer, description)

    def _migration(self, image: ecs.ContainerImage) -> CustomResource:
        names = self.names
        task = fargate_task(self, "MigrateTask", family=names("catalog-migrate"), cpu=256, memory_mib=512)
        add_container(
            task,
            "migrate",
            image=image,
            entry_point=["python3", "/app/deploy/ecs/catalog_db.py"],
            command=["migrate"],
            user="10001",
            secrets={
                "CATALOG_OWNER_SECRET_JSON": ecs.Secret.from_secrets_manager(self.owner_secret),
                "CATALOG_DB_SECRET_JSON": ecs.Secret.from_secrets_manager(self.app_secret),
            },
            logging=container_logs(
                log_group(  # kept a year: the record of every schema change
                    self, "MigrateLogs", names.log_group("catalog-migrate"), logs.RetentionDays.ONE_YEAR
                )
            ),
        )
        sg = ec2.SecurityGroup(
            self,
            "MigrateSg",
            vpc=self.network.vpc,
            description=f"{names('catalog-migrate')}: to the database",
        )
        self.allow_from(sg, "catalog migration")
        self.migrate_task, self.migrate_security_group = task, sg
        return self._run_on_deploy(task, sg)

    def _run_on_deploy(self, task: ecs.FargateTaskDefinition, sg: ec2.SecurityGroup) -> CustomResource:
        code = lambda_.Code.from_inline(RUNNER.read_text(encoding="utf-8"))
        common: dict[str, Any] = {
            "runtime": lambda_.Runtime.PYTHON_3_14,
            "code": code,
            "timeout": Duration.seconds(30),
            "memory_size": 128,
        }
        on_event = lambda_.Function(
            self,
            "RunTask",
            handler="index.on_event",
            description="Deploy: start the catalog migration task",
            log_group=logs.LogGroup(self, "RunTaskLogs", retention=logs.RetentionDays.ONE_MONTH),
            **common,
        )
        is_complete = lambda_.Function(
            self,
            "WaitTask",
            handler="index.is_complete",
            description="Deploy: wait for the catalog migration task's exit code",
            log_group=logs.LogGroup(self, "WaitTaskLogs", retention=logs.RetentionDays.ONE_MONTH),
            **common,
        )
        on_event.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[task.task_definition_arn],
                conditions={"ArnEquals": {"ecs:cluster": self.network.cluster.cluster_arn}},
            )
        )
        roles = [task.execution_role.role_arn] if task.execution_role else []
        on_event.add_to_role_policy(
            iam.PolicyStatement(actions=["iam:PassRole"], resources=[task.task_role.role_arn, *roles])
        )
        is_complete.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks"],
                resources=["*"],  # task ids are unknown until RunTask; the condition pins the cluster
                conditions={"ArnEquals": {"ecs:cluster": self.network.cluster.cluster_arn}},
            )
        )
        provider = cr.Provider(
            self,
            "Runner",
            on_event_handler=on_event,
            is_complete_handler=is_complete,
            query_interval=Duration.seconds(15),
            total_timeout=Duration.minutes(30),
            log_group=logs.LogGroup(self, "RunnerLogs", retention=logs.RetentionDays.ONE_MONTH),
        )
        return CustomResource(
            self,
            "Migration",
            service_token=provider.service_token,
            resource_type="Custom::WenuCatalogMigration",
            properties={
                "Name": self.names("catalog-migration"),
                "Cluster": self.network.cluster.cluster_arn,
                "TaskDefinition": task.task_definition_arn,  # a new revision (new image) runs it again
                "Subnets": self.network.vpc.select_subnets(
                    subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
                ).subnet_ids,
                "SecurityGroups": [sg.security_group_id],
            },
        )
