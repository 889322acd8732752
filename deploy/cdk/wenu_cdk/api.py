"""The API service: ``wenu-stream serve api`` on Fargate behind an Application Load Balancer.

- **Load balancer**: with ``wenu:apiCertificateArn`` set it is internet-facing, HTTPS only (TLS 1.2+,
  port 80 redirects); without a certificate it is internal (HTTP inside the VPC only), so a stage
  never exposes plain HTTP to the internet. Access logs go to the stage's logs bucket when the stack
  has a region (``wenu:region``): the log-delivery principal differs between regions.
- **Service** ``wenu-<stage>-api``: two tasks at least (one per AZ), scaled on CPU; the target group
  checks ``/readyz`` (the catalog answers), the container health check ``/healthz`` (the process lives).
  It starts after the deploy's catalog migration.
- **Task role**: only what the API reads or changes: stats, alarm state and transitions (read; ack and
  shelve update alarm state), the lease tables and the stream's shards (lag), dead letters and
  quarantine (read). No KMS, no publish, no stats or staging writes. The catalog is reached with the
  services' database user (``CATALOG_DB_SECRET_JSON`` -> ``WENU_CATALOG_URL`` in the entrypoint).
- **Sign-in**: ``wenu:apiOidcIssuer`` and ``wenu:apiOidcAudience`` (a Cognito user pool and app client)
  become ``WENU_API_OIDC_ISSUER`` and ``WENU_API_OIDC_AUDIENCE``; without them synthesis warns, since
  the API would then only accept development tokens.
"""

from __future__ import annotations

from aws_cdk import Annotations, Duration, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from .catalog import Catalog
from .ingest import Ingest
from .naming import APPS, Names
from .network import Network
from .storage import DEAD_LETTER, QUARANTINE, Storage
from .tasks import add_container, container_logs, fargate_task, health_check, log_group, task_role

API_PORT = 8080
READ_ACTIONS = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan"]


class Api(Construct):
    """``service``, ``load_balancer``, ``role`` and ``url``."""

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
        logs_bucket: s3.IBucket | None,
        certificate_arn: str = "",
        oidc_issuer: str = "",
        oidc_audience: str = "",
        public_url: str = "",
    ) -> None:
        super().__init__(scope, id)
        self.names, self.storage, self.ingest = names, storage, ingest
        self.role = self._role()
        self.session_secret = secretsmanager.Secret(
            self,
            "SessionSecret",
            secret_name=names.secret("api-session"),
            description="Key of the backoffice's session cookies, shared by the API tasks",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
        )
        task = fargate_task(self, "Task", family=names("api"), cpu=512, memory_mib=1024, role=self.role)
        environment = {
            **names.environment("alarms"),
            # The lag view reads both apps' lease tables; WENU_LEASE_TABLE names the alarms one (with WENU_APP).
            "WENU_APP": "alarms",
            "WENU_SINKS_BUCKET": storage.data.bucket_name,
            "WENU_ALARMS_TOPIC_ARN": storage.alarms_topic.topic_arn,
            "WENU_API_HOST": "0.0.0.0",
            "WENU_API_PORT": str(API_PORT),
            "WENU_LOG_LEVEL": "info",
            "AWS_REGION": Stack.of(self).region,
        }
        if public_url:
            environment["WENU_API_PUBLIC_URL"] = public_url
        if oidc_issuer:
            environment["WENU_API_OIDC_ISSUER"] = oidc_issuer
            environment["WENU_API_OIDC_AUDIENCE"] = oidc_audience
        else:
            environment["WENU_API_DEV_SECRET_FILE"] = "/tmp/wenu-api-dev-secret"
            Annotations.of(self).add_warning(
                "wenu:apiOidcIssuer is not set: the API accepts only development tokens; "
                "pass -c wenu:apiOidcIssuer=https://cognito-idp.<region>.amazonaws.com/<pool> "
                "-c wenu:apiOidcAudience=<app client id>"
            )
        add_container(
            task,
            "api",
            image=image,
            command=["--", "wenu-stream", "serve", "api"],  # the image's entrypoint composes the catalog URL
            user="10001",
            environment=environment,
            secrets={
                "CATALOG_DB_SECRET_JSON": ecs.Secret.from_secrets_manager(catalog.app_secret),
                # One cookie key for every task behind the load balancer (a backoffice session survives a switch).
                "WENU_API_SESSION_SECRET": ecs.Secret.from_secrets_manager(self.session_secret),
            },
            port_mappings=[ecs.PortMapping(name="http", container_port=API_PORT)],
            health_check=health_check(["CMD", "/app/deploy/ecs/healthcheck.sh", str(API_PORT)]),
            stop_timeout=Duration.seconds(30),
            linux_parameters=ecs.LinuxParameters(self, "Linux", init_process_enabled=True),
            logging=container_logs(log_group(self, "Logs", names.log_group("api")), non_blocking=True),
        )

        public = bool(certificate_arn)
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "Alb",
            vpc=network.vpc,
            internet_facing=public,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC) if public else network.private,
            drop_invalid_header_fields=True,
            deletion_protection=False,
        )
        if logs_bucket is not None:
            self.load_balancer.log_access_logs(logs_bucket, prefix=f"alb/{names('api')}")
        else:  # the log-delivery principal depends on the region, unknown to an environment-agnostic stack
            Annotations.of(self).add_warning(
                "the API load balancer writes no access logs: pass -c wenu:region=<region> to enable them"
            )
        self.security_group = ec2.SecurityGroup(
            self, "Sg", vpc=network.vpc, description=f"{names('api')}: the load balancer and Prometheus"
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            service_name=names("api"),
            cluster=network.cluster,
            task_definition=task,
            desired_count=2,
            min_healthy_percent=100,
            max_healthy_percent=200,
            security_groups=[self.security_group],
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            vpc_subnets=network.private,
            cloud_map_options=network.discovery("api"),  # the metrics collector scrapes /metrics
        )
        self.service.node.add_dependency(catalog.migration)
        catalog.allow_from(self.security_group, "API catalog access")
        self.security_group.add_ingress_rule(
            network.collector_sg, ec2.Port.tcp(API_PORT), "the collector scrapes"
        )
        scaling = self.service.auto_scale_task_count(min_capacity=2, max_capacity=6)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)

        health = elbv2.HealthCheck(path="/readyz", healthy_http_codes="200", interval=Duration.seconds(15))
        if public:
            listener = self.load_balancer.add_listener(
                "Https",
                port=443,
                certificates=[acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                open=True,
            )
            self.load_balancer.add_redirect(source_port=80, target_port=443)
            scheme = "https"
        else:
            listener = self.load_balancer.add_listener("Http", port=80, open=False)
            self.load_balancer.connections.allow_from(
                ec2.Peer.ipv4(network.vpc.vpc_cidr_block), ec2.Port.tcp(80), "inside the VPC only"
            )
            scheme = "http"
        listener.add_targets(
            "Api",
            port=API_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.service],
            health_check=health,
            deregistration_delay=Duration.seconds(30),
        )
        self.url = f"{scheme}://{self.load_balancer.load_balancer_dns_name}"

    def _role(self) -> iam.Role:
        s, names = self.storage, self.names
        role = task_role(
            self,
            "TaskRole",
            role_name=names.task_role("api"),
            description="wenu API: reads stats, alarms, lag and dead letters; acks and shelves alarms",
        )
        tables = [s.stats_table, s.alarm_state_table, s.transitions_table]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadTables",
                actions=READ_ACTIONS,
                resources=[arn for t in tables for arn in (t.table_arn, f"{t.table_arn}/index/*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="AckAndShelve", actions=["dynamodb:UpdateItem"], resources=[s.alarm_state_table.table_arn]
            )
        )
        lease_tables = [
            Stack.of(self).format_arn(
                service="dynamodb", resource="table", resource_name=names.lease_table(app)
            )
            for app in APPS
        ]
        role.add_to_policy(
            iam.PolicyStatement(sid="ReadLeases", actions=READ_ACTIONS, resources=lease_tables)
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="StreamShards",
                actions=["kinesis:DescribeStreamSummary", "kinesis:ListShards"],
                resources=[self.ingest.stream.stream_arn],
            )
        )
        prefixes = [DEAD_LETTER, QUARANTINE]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadDeadLetters",
                actions=["s3:GetObject"],
                resources=[s.data.arn_for_objects(f"{p}*") for p in prefixes],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListDeadLetters",
                actions=["s3:ListBucket"],
                resources=[s.data.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
            )
        )
        return role
