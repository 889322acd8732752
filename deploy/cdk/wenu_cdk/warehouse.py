"""The warehouse in production: Redshift, the scheduled ``warehouse load`` task, and its metrics path.

- **Redshift**: by default a provisioned cluster ``wenu-<stage>-warehouse`` is created (single node,
  ``wenu:redshiftNodeType``; private subnets, encrypted, enhanced VPC routing so COPY reads S3 through
  the VPC's gateway endpoint, the admin password managed and rotated by Redshift in Secrets Manager).
  A provisioned cluster and not Serverless: Serverless needs subnets in three AZs, and an
  environment-agnostic stack has two. To use an existing warehouse instead, reference it:
  ``wenu:redshiftWorkgroup`` (a Serverless workgroup) or ``wenu:redshiftCluster``, with
  ``wenu:redshiftSecretArn`` (Data API credentials); nothing is created then.
- **COPY role** ``wenu-<stage>-redshift-copy``: assumed by Redshift, reads only ``staging/`` and
  ``manifests/`` of the data bucket; attached to a created cluster (attach it to a referenced one).
- **Scheduled load**: EventBridge Scheduler runs the one-off Fargate task ``wenu-<stage>-warehouse-load``
  (``wenu-stream warehouse load``) every ``wenu:warehouseLoadMinutes`` (15). Each run loads every pending
  manifest exactly once (the ledger in the warehouse); a failed run leaves them pending for the next.
  The scheduler's own failures (it could not start the task) go to an SQS dead-letter queue.
- **Metrics**: a run is a batch job, so it pushes its outcome (``wenu_warehouse_last_run_ok``,
  ``..._last_success_timestamp_seconds``, rows, bytes) to a Pushgateway service,
  ``pushgateway.wenu-<stage>.internal:9091``, which the metrics collector scrapes like any task. Why
  the Pushgateway (and not CloudWatch EMF in the logs): the alert rules and dashboards are Prometheus
  ones; the Pushgateway is Prometheus' own answer for service-level batch jobs, and `warehouse load`
  already speaks it (tested against a real one). It keeps its state in a file under /tmp (a restart of
  the process keeps it; a new task starts empty until the next run pushes, ``WenuWarehouseLoadMetricsAbsent``
  covers a long gap).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_redshift as redshift
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .naming import Names
from .network import Network
from .storage import MANIFESTS, STAGING, Storage
from .tasks import add_container, container_logs, fargate_task, log_group, task_role

PUSHGATEWAY_PORT = 9091
DATABASE = "wenu"


class Warehouse(Construct):
    """``copy_role``, ``cluster`` (None when referenced), ``load_task``, ``schedule``, ``pushgateway``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        names: Names,
        network: Network,
        storage: Storage,
        image: ecs.ContainerImage,
        pushgateway_image: str,
        every_minutes: int = 15,
        node_type: str = "ra3.large",
        workgroup: str = "",
        cluster: str = "",
        secret_arn: str = "",
    ) -> None:
        super().__init__(scope, id)
        self.names, self.network, self.storage = names, network, storage
        self.copy_role = iam.Role(
            self,
            "CopyRole",
            role_name=names("redshift-copy"),
            assumed_by=iam.CompositePrincipal(
                iam.ServicePrincipal("redshift.amazonaws.com"),
                iam.ServicePrincipal("redshift-serverless.amazonaws.com"),
            ),
            description="Redshift COPY of wenu-stream: reads the staged files and their manifests",
        )
        self.copy_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[storage.data.arn_for_objects(f"{p}*") for p in (STAGING, MANIFESTS)],
            )
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "LoadSg",
            vpc=network.vpc,
            description=f"{names('warehouse-load')}: Data API and S3 out only",
        )
        if workgroup or cluster:
            self.cluster = None
            target = {"WENU_WAREHOUSE_REDSHIFT_WORKGROUP": workgroup} if workgroup else {}
            target |= {"WENU_WAREHOUSE_REDSHIFT_CLUSTER": cluster} if cluster else {}
            resource = self._warehouse_arn(workgroup, cluster)
        else:
            self.cluster = self._cluster(node_type)
            secret_arn = self.cluster.attr_master_password_secret_arn
            target = {"WENU_WAREHOUSE_REDSHIFT_CLUSTER": names("warehouse")}
            resource = self._warehouse_arn("", names("warehouse"))
        self.secret_arn = secret_arn
        self.pushgateway = self._pushgateway(pushgateway_image)
        self.load_task = self._load_task(image, target, resource)
        self.schedule = self._schedule(every_minutes)

    def _warehouse_arn(self, workgroup: str, cluster: str) -> str:
        stack = Stack.of(self)
        if workgroup:
            return stack.format_arn(service="redshift-serverless", resource="workgroup", resource_name="*")
        return stack.format_arn(
            service="redshift",
            resource="cluster",
            resource_name=cluster,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _cluster(self, node_type: str) -> redshift.CfnCluster:
        subnets = redshift.CfnClusterSubnetGroup(
            self,
            "Subnets",
            description=f"{self.names('warehouse')}: private subnets",
            subnet_ids=self.network.vpc.select_subnets(
                subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
            ).subnet_ids,
        )
        sg = ec2.SecurityGroup(
            self,
            "ClusterSg",
            vpc=self.network.vpc,
            allow_all_outbound=False,
            description=f"{self.names('warehouse')}: no inbound (loads go through the Data API)",
        )
        sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "COPY reads S3 (gateway endpoint)")
        parameters = redshift.CfnClusterParameterGroup(
            self,
            "Parameters",
            description=f"{self.names('warehouse')}: TLS only, user activity logged",
            parameter_group_family="redshift-1.0",
            parameters=[
                redshift.CfnClusterParameterGroup.ParameterProperty(parameter_name=k, parameter_value=v)
                for k, v in (("require_ssl", "true"), ("enable_user_activity_logging", "true"))
            ],
        )
        cluster = redshift.CfnCluster(
            self,
            "Cluster",
            cluster_identifier=self.names("warehouse"),
            cluster_type="single-node",
            node_type=node_type,
            db_name=DATABASE,
            master_username="wenu_admin",
            manage_master_password=True,  # Secrets Manager secret, rotated by Redshift
            cluster_subnet_group_name=subnets.ref,
            vpc_security_group_ids=[sg.security_group_id],
            publicly_accessible=False,
            encrypted=True,
            enhanced_vpc_routing=True,
            iam_roles=[self.copy_role.role_arn],
            automated_snapshot_retention_period=7,
            cluster_parameter_group_name=parameters.ref,
            logging_properties=redshift.CfnCluster.LoggingPropertiesProperty(
                log_destination_type="cloudwatch", log_exports=["connectionlog", "userlog", "useractivitylog"]
            ),
            port=5439,
        )
        cluster.apply_removal_policy(RemovalPolicy.SNAPSHOT)
        return cluster

    def _pushgateway(self, image: str) -> ecs.FargateService:
        names = self.names
        task = fargate_task(self, "PushgatewayTask", family=names("pushgateway"), cpu=256, memory_mib=512)
        add_container(
            task,
            "pushgateway",
            image=ecs.ContainerImage.from_registry(image),
            command=["--persistence.file=/tmp/pushgateway.db", "--persistence.interval=1m"],
            user="65534",
            port_mappings=[ecs.PortMapping(name="http", container_port=PUSHGATEWAY_PORT)],
            logging=container_logs(log_group(self, "PushgatewayLogs", names.log_group("pushgateway"))),
        )
        sg = ec2.SecurityGroup(
            self,
            "PushgatewaySg",
            vpc=self.network.vpc,
            description=f"{names('pushgateway')}: pushes and scrapes",
        )
        sg.add_ingress_rule(self.security_group, ec2.Port.tcp(PUSHGATEWAY_PORT), "warehouse load pushes")
        sg.add_ingress_rule(
            self.network.collector_sg, ec2.Port.tcp(PUSHGATEWAY_PORT), "the collector scrapes"
        )
        return ecs.FargateService(
            self,
            "PushgatewayService",
            service_name=names("pushgateway"),
            cluster=self.network.cluster,
            task_definition=task,
            desired_count=1,
            min_healthy_percent=0,  # one task; a deploy replaces it (a run in between retries next time)
            max_healthy_percent=100,
            security_groups=[sg],
            vpc_subnets=self.network.private,
            cloud_map_options=self.network.discovery("pushgateway"),
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
        )

    @property
    def pushgateway_url(self) -> str:
        return f"http://pushgateway.{self.names.dns_namespace}:{PUSHGATEWAY_PORT}"

    def _load_task(
        self, image: ecs.ContainerImage, target: dict[str, str], warehouse: str
    ) -> ecs.TaskDefinition:
        names, s = self.names, self.storage
        role = task_role(
            self,
            "LoadRole",
            role_name=names.task_role("warehouse-load"),
            description="wenu warehouse load: staged files, manifests, the Data API on its warehouse",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListStaged",
                actions=["s3:ListBucket"],
                resources=[s.data.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in (STAGING, MANIFESTS)]}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadStaged",
                actions=["s3:GetObject"],
                resources=[s.data.arn_for_objects(f"{p}*") for p in (STAGING, MANIFESTS)],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteManifests",
                actions=["s3:PutObject"],
                resources=[s.data.arn_for_objects(f"{MANIFESTS}*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DataApi",
                actions=["redshift-data:ExecuteStatement", "redshift-data:BatchExecuteStatement"],
                resources=[warehouse],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="OwnStatements",
                actions=["redshift-data:DescribeStatement", "redshift-data:GetStatementResult"],
                resources=["*"],  # statement ids have no ARN; the condition limits them to this role's own
                conditions={"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="Credentials", actions=["secretsmanager:GetSecretValue"], resources=[self.secret_arn]
            )
        )
        task = fargate_task(
            self, "LoadTask", family=names("warehouse-load"), cpu=512, memory_mib=1024, role=role
        )
        environment = {
            **names.environment("processing"),
            "WENU_SINKS_BUCKET": s.data.bucket_name,
            "WENU_WAREHOUSE_TARGET": "redshift",
            "WENU_WAREHOUSE_REDSHIFT_DATABASE": DATABASE,
            "WENU_WAREHOUSE_REDSHIFT_SECRET_ARN": self.secret_arn,
            "WENU_WAREHOUSE_REDSHIFT_IAM_ROLE": self.copy_role.role_arn,
            "WENU_WAREHOUSE_PUSHGATEWAY": self.pushgateway_url,
            "WENU_LOG_LEVEL": "info",
            "AWS_REGION": Stack.of(self).region,
            **target,
        }
        add_container(
            task,
            "load",
            image=image,
            command=["--", "wenu-stream", "warehouse", "load"],
            user="10001",
            environment=environment,
            logging=container_logs(
                log_group(
                    self, "LoadLogs", names.log_group("warehouse-load"), logs.RetentionDays.THREE_MONTHS
                )
            ),
        )
        return task

    def _schedule(self, every_minutes: int) -> scheduler.Schedule:
        dead_letters = sqs.Queue(
            self,
            "ScheduleDeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        return scheduler.Schedule(
            self,
            "LoadSchedule",
            schedule_name=self.names("warehouse-load"),
            description="wenu-stream warehouse load: every pending manifest, each exactly once",
            schedule=scheduler.ScheduleExpression.rate(Duration.minutes(every_minutes)),
            target=targets.EcsRunFargateTask(
                self.network.cluster,
                task_definition=self.load_task,
                security_groups=[self.security_group],
                vpc_subnets=self.network.private,
                dead_letter_queue=dead_letters,
                retry_attempts=2,  # RunTask itself failing (capacity, throttling); not a failed load
                max_event_age=Duration.minutes(every_minutes),
            ),
        )
