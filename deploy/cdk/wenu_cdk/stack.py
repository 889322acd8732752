"""The whole wenu-stream stack in one environment-agnostic CloudFormation stack."""

from __future__ import annotations

import dataclasses
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from constructs import Construct, Node

from . import nag
from .api import Api
from .catalog import Catalog
from .ingest import Ingest
from .monitoring import Monitoring
from .naming import Names, SettingError
from .network import Network
from .scaling import ShardCountMetric
from .services import Services
from .storage import Storage
from .warehouse import Warehouse


@dataclasses.dataclass(frozen=True, kw_only=True)
class StackSettings:
    """What differs between deployments, from the app's context (cdk.json or ``-c key=value``).

    ``stage`` (``-c stage=prod``) names every physical resource (``naming.Names``), so stages deploy
    side by side in one account; the stack itself is ``WenuStream-<stage>``. The others are
    ``-c wenu:<field in camelCase>=<value>``, e.g. ``-c wenu:catalogMultiAz=true``.
    """

    stage: str = "dev"
    region: str = ""  # set: the stack is pinned to it (enables the load balancer's access logs)
    image_repository: str = "wenu-stream"
    image_tag: str = "latest"
    shards: int = 4
    max_shards: int = 64
    catalog_instance_type: str = "t4g.small"
    catalog_multi_az: bool = False
    api_certificate_arn: str = ""  # set: a public HTTPS load balancer; empty: internal HTTP
    api_oidc_issuer: str = ""
    api_oidc_audience: str = ""
    warehouse_load_minutes: int = 15
    redshift_node_type: str = "ra3.large"
    redshift_workgroup: str = ""  # set (or redshift_cluster): use this warehouse, create none
    redshift_cluster: str = ""
    redshift_secret_arn: str = ""
    pushgateway_image: str = "prom/pushgateway:v1.9.0"
    collector_image: str = "prom/prometheus:v2.53.0"
    alert_email: str = ""
    consumers_stopped: bool = False  # true: the consumer services run no task (first deploy: no key ring yet)
    api_public_url: str = ""  # the address browsers use for the backoffice (its OIDC redirect)  # set: subscribed to the stage's ops-alerts topic (confirm the e-mail)

    def __post_init__(self) -> None:
        if (self.redshift_workgroup or self.redshift_cluster) and not self.redshift_secret_arn:
            raise SettingError(
                "wenu:redshiftWorkgroup/wenu:redshiftCluster is set without wenu:redshiftSecretArn; fix: pass "
                "-c wenu:redshiftSecretArn=<ARN of the secret of a database user that may create the schema>"
            )
        if not 5 <= self.warehouse_load_minutes <= 1440:
            raise SettingError(
                f"wenu:warehouseLoadMinutes={self.warehouse_load_minutes} is out of range; "
                "fix: pass -c wenu:warehouseLoadMinutes=<5..1440>"
            )
        if not 1 <= self.shards <= self.max_shards:
            raise SettingError(
                f"wenu:shards={self.shards} must be between 1 and wenu:maxShards={self.max_shards}; "
                "fix: pass -c wenu:shards=<n> within that range, or raise wenu:maxShards"
            )
        Names(self.stage)  # checks the stage name

    @property
    def names(self) -> Names:
        return Names(self.stage)

    @classmethod
    def from_context(cls, node: Node) -> StackSettings:
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            key = "stage" if field.name == "stage" else "wenu:" + _camel(field.name)
            value = node.try_get_context(key)
            if value is not None:
                values[field.name] = _convert(key, value, field.default)
        return cls(**values)


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _convert(key: str, value: Any, default: Any) -> Any:
    kind = type(default)
    if kind is bool and str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    try:
        if kind is not bool:
            return kind(value)
    except ValueError:
        pass
    raise SettingError(
        f"{key}={value!r} is not a {kind.__name__}; fix: pass -c {key}=<value> like the default "
        f"{default!r} (cdk.json)"
    )


class WenuStack(cdk.Stack):
    """Storage, ingest (IoT -> Kinesis -> Firehose -> S3), the catalog database, the two consumer
    services and their scaling, and the API."""

    def __init__(
        self, scope: Construct, id: str, *, settings: StackSettings | None = None, **kwargs: Any
    ) -> None:
        settings = settings or StackSettings()
        super().__init__(
            scope,
            id,
            description=(
                f"wenu-stream, stage {settings.stage}: meter readings through Kinesis "
                "to alarms, stats and the warehouse"
            ),
            env=cdk.Environment(region=settings.region) if settings.region else None,
            **kwargs,
        )
        # Server access logs are delivered through the logs bucket's policy (it allows no ACLs).
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", value=True)
        self.settings = settings
        names = self.names = settings.names
        self.storage = Storage(self, "Storage", names=names)
        self.ingest = Ingest(
            self, "Ingest", names=names, archive=self.storage.archive, shards=settings.shards
        )
        self.shard_count = ShardCountMetric(self, "ShardCount", stream=self.ingest.stream)
        # A reference by name, not a lookup: the repository is created and pushed to by the image build.
        repository = ecr.Repository.from_repository_name(self, "Repository", settings.image_repository)
        image = ecs.ContainerImage.from_ecr_repository(repository, settings.image_tag)
        self.network = Network(self, "Network", names=names, logs_bucket=self.storage.logs)
        self.catalog = Catalog(
            self,
            "Catalog",
            names=names,
            network=self.network,
            image=image,
            instance_type=settings.catalog_instance_type,
            multi_az=settings.catalog_multi_az,
        )
        self.services = Services(
            self,
            "Services",
            names=names,
            network=self.network,
            catalog=self.catalog,
            storage=self.storage,
            ingest=self.ingest,
            image=image,
            shard_metric=self.shard_count.metric,
            max_shards=settings.max_shards,
            stopped=settings.consumers_stopped,
            api_public_url=settings.api_public_url,
        )
        self.api = Api(
            self,
            "Api",
            names=names,
            network=self.network,
            catalog=self.catalog,
            storage=self.storage,
            ingest=self.ingest,
            image=image,
            logs_bucket=self.storage.logs if settings.region else None,
            certificate_arn=settings.api_certificate_arn,
            oidc_issuer=settings.api_oidc_issuer,
            oidc_audience=settings.api_oidc_audience,
            public_url=settings.api_public_url,
        )
        self.warehouse = Warehouse(
            self,
            "Warehouse",
            names=names,
            network=self.network,
            storage=self.storage,
            image=image,
            pushgateway_image=settings.pushgateway_image,
            every_minutes=settings.warehouse_load_minutes,
            node_type=settings.redshift_node_type,
            workgroup=settings.redshift_workgroup,
            cluster=settings.redshift_cluster,
            secret_arn=settings.redshift_secret_arn,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            names=names,
            network=self.network,
            collector_image=settings.collector_image,
            alert_email=settings.alert_email,
        )
        # The KCL daemon reads in Java (no Prometheus counter of its throttling): the stream's own metric.
        cloudwatch.Alarm(
            self,
            "StreamReadsThrottled",
            alarm_description=f"wenu-{names.stage}: GetRecords on the readings stream keeps being throttled",
            metric=self.ingest.stream.metric_read_provisioned_throughput_exceeded(
                period=cdk.Duration.minutes(5), statistic="Sum"
            ),
            threshold=60,
            evaluation_periods=3,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        ).add_alarm_action(cloudwatch_actions.SnsAction(self.monitoring.alerts_topic))
        for name, value in (
            ("StreamName", self.ingest.stream.stream_name),
            ("DataBucket", self.storage.data.bucket_name),
            ("ArchiveBucket", self.storage.archive.bucket_name),
            ("AlarmsTopicArn", self.storage.alarms_topic.topic_arn),
            ("KeyRingKeyArn", self.storage.keyring_key.key_arn),
            ("ApiUrl", self.api.url),
            ("CatalogEndpoint", self.catalog.instance.db_instance_endpoint_address),
            ("CatalogMigrateTask", self.catalog.migrate_task.family),
            ("Cluster", self.network.cluster.cluster_name),
            ("WarehouseLoadTask", self.warehouse.load_task.family),
            ("RedshiftCopyRoleArn", self.warehouse.copy_role.role_arn),
            ("RedshiftSecretArn", self.warehouse.secret_arn),
            ("PrometheusQueryUrl", self.monitoring.query_url),
            ("OpsAlertsTopicArn", self.monitoring.alerts_topic.topic_arn),
        ):
            cdk.CfnOutput(self, name, value=value)
        nag.acknowledge(self)  # the cdk-nag findings kept on purpose, with their reasons
