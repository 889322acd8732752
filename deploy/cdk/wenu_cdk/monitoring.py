"""Prometheus for real: a collector per stage, Amazon Managed Service for Prometheus, alerts to SNS.

- **Collector** ``wenu-<stage>-collector``: one Fargate task running Prometheus in agent mode with
  ``deploy/prometheus/agent.yml``. It discovers the tasks of alarms, processing, the API and the
  Pushgateway through the stage's Cloud Map namespace (DNS A records) and remote-writes to AMP.
  Why this and not an ADOT sidecar in every task: one collector per stage instead of one per task
  (memory in every task), a sidecar dies with its task so ``up == 0`` could never be observed, and
  the collector's configuration is plain Prometheus configuration, checked with promtool and run for
  real in the tests.
- **AMP workspace** ``wenu-<stage>-metrics``: stores the series (150 days), evaluates
  ``deploy/prometheus/wenu-alerts.yml`` (the same file promtool tests), and its Alertmanager sends
  every alert to the topic ``wenu-<stage>-ops-alerts`` (``wenu:alertEmail`` subscribes an address).
- **Grafana** reads the workspace's query URL (output ``PrometheusQueryUrl``) with SigV4:
  ``deploy/grafana/provisioning`` provisions the data source and the dashboard.
"""

from __future__ import annotations

import string
from pathlib import Path

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_aps as aps
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .naming import Names
from .network import Network
from .tasks import add_container, container_logs, fargate_task, health_check, log_group, task_role

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "prometheus"
AGENT_CONFIG = PROMETHEUS_DIR / "agent.yml"
ALERT_RULES = PROMETHEUS_DIR / "wenu-alerts.yml"
# Write the configuration from the environment to /tmp (the root file system is read-only), then run.
COLLECTOR_SCRIPT = (
    'printf "%s" "$PROMETHEUS_AGENT_CONFIG" > /tmp/agent.yml && exec /bin/prometheus --enable-feature=agent '
    "--config.file=/tmp/agent.yml --storage.agent.path=/tmp/agent-wal --web.listen-address=:9090"
)


def agent_config(*, stage: str, namespace: str, region: str, remote_write_url: str) -> str:
    """``deploy/prometheus/agent.yml`` with its placeholders filled."""
    return string.Template(AGENT_CONFIG.read_text(encoding="utf-8")).substitute(
        STAGE=stage, NAMESPACE=namespace, REGION=region, REMOTE_WRITE_URL=remote_write_url
    )


def alertmanager_config(topic_arn: str, region: str, stage: str) -> str:
    """AMP's Alertmanager definition: every alert to the ops topic, grouped per alert and app."""
    return f"""alertmanager_config: |
  route:
    receiver: ops
    group_by: [alertname, app, job]
    group_wait: 30s
    group_interval: 5m
    repeat_interval: 4h
  receivers:
    - name: ops
      sns_configs:
        - topic_arn: {topic_arn}
          sigv4:
            region: {region}
          subject: 'wenu-{stage} {{{{ .Status }}}}: {{{{ .CommonLabels.alertname }}}}'
"""


class Monitoring(Construct):
    """``workspace``, ``alerts_topic``, ``collector``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        names: Names,
        network: Network,
        collector_image: str,
        alert_email: str = "",
    ) -> None:
        super().__init__(scope, id)
        region = Stack.of(self).region
        self.alerts_topic = sns.Topic(
            self,
            "AlertsTopic",
            topic_name=names("ops-alerts"),
            display_name=f"wenu-{names.stage} alerts",
            enforce_ssl=True,
        )
        self.alerts_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ManagedPrometheusAlerts",
                principals=[iam.ServicePrincipal("aps.amazonaws.com")],
                actions=["sns:Publish", "sns:GetTopicAttributes"],
                resources=[self.alerts_topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        if alert_email:
            self.alerts_topic.add_subscription(subscriptions.EmailSubscription(alert_email))
        self.workspace = aps.CfnWorkspace(
            self,
            "Workspace",
            alias=names("metrics"),
            alert_manager_definition=alertmanager_config(self.alerts_topic.topic_arn, region, names.stage),
            logging_configuration=aps.CfnWorkspace.LoggingConfigurationProperty(
                log_group_arn=logs.LogGroup(
                    self,
                    "WorkspaceLogs",
                    log_group_name=names.log_group("prometheus"),
                    retention=logs.RetentionDays.ONE_MONTH,
                    removal_policy=RemovalPolicy.DESTROY,
                ).log_group_arn
            ),
        )
        self.rules = aps.CfnRuleGroupsNamespace(
            self,
            "Rules",
            name=names("alerts"),
            workspace=self.workspace.attr_arn,
            data=ALERT_RULES.read_text(encoding="utf-8"),
        )
        self.query_url = self.workspace.attr_prometheus_endpoint  # .../workspaces/ws-.../
        self.collector = self._collector(names, network, collector_image, region)

    def _collector(self, names: Names, network: Network, image: str, region: str) -> ecs.FargateService:
        role = task_role(
            self,
            "CollectorRole",
            role_name=names.task_role("collector"),
            description="wenu metrics collector: remote-writes to the stage's Prometheus workspace",
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["aps:RemoteWrite"], resources=[self.workspace.attr_arn])
        )
        task = fargate_task(
            self, "CollectorTask", family=names("collector"), cpu=256, memory_mib=512, role=role
        )
        config = agent_config(
            stage=names.stage,
            namespace=names.dns_namespace,
            region=region,
            remote_write_url=f"{self.workspace.attr_prometheus_endpoint}api/v1/remote_write",
        )
        add_container(
            task,
            "collector",
            image=ecs.ContainerImage.from_registry(image),
            entry_point=["/bin/sh", "-c"],
            command=[COLLECTOR_SCRIPT],
            environment={"PROMETHEUS_AGENT_CONFIG": config},
            user="65534",
            port_mappings=[ecs.PortMapping(name="http", container_port=9090)],
            health_check=health_check(
                ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/-/healthy"]
            ),
            logging=container_logs(log_group(self, "CollectorLogs", names.log_group("collector"))),
        )
        sg = network.collector_sg
        return ecs.FargateService(
            self,
            "CollectorService",
            service_name=names("collector"),
            cluster=network.cluster,
            task_definition=task,
            desired_count=1,
            min_healthy_percent=0,  # one agent; its WAL under /tmp is lost on replacement (a gap, not a loss)
            max_healthy_percent=200,
            security_groups=[sg],
            vpc_subnets=network.private,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
        )
