"""The network and the cluster every task of a stage runs in.

A VPC over two AZs (one NAT gateway; S3 and DynamoDB gateway endpoints keep that traffic off it)
and one ECS cluster with Container Insights. Tasks run in the private subnets; only the API's load
balancer (when public) sits in the public ones. A private DNS namespace ``wenu-<stage>.internal``
(Cloud Map) names the tasks of each service (``alarms.wenu-<stage>.internal`` ...): the metrics
collector discovers its scrape targets there, and the warehouse load finds the Pushgateway.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct

from .naming import Names


class Network(Construct):
    """``vpc`` and ``cluster``."""

    def __init__(self, scope: Construct, id: str, *, names: Names, logs_bucket: s3.IBucket) -> None:
        super().__init__(scope, id)
        self.vpc = ec2.Vpc(self, "Vpc", max_azs=2, nat_gateways=1)
        # DynamoDB and S3 traffic stays off the NAT gateway (cheaper, and no internet path for the data).
        self.vpc.add_gateway_endpoint("DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=self.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        self.private = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        # Every accepted and rejected flow, to the stage's logs bucket (who talked to the data stores).
        self.vpc.add_flow_log(
            "FlowLogs",
            destination=ec2.FlowLogDestination.to_s3(logs_bucket, "vpc-flow-logs/"),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        # The metrics collector's group: every scraped task admits its metrics port from this group only.
        self.collector_sg = ec2.SecurityGroup(
            self, "CollectorSg", vpc=self.vpc, description=f"{names('collector')}: scrapes out, nothing in"
        )
        self.namespace = servicediscovery.PrivateDnsNamespace(
            self,
            "Namespace",
            name=names.dns_namespace,
            vpc=self.vpc,
            description="wenu-stream tasks of the stage",
        )

    def discovery(self, name: str) -> ecs.CloudMapOptions:
        """Register a service's tasks as ``<name>.<namespace>`` A records (one per task, 10 s TTL)."""
        return ecs.CloudMapOptions(
            name=name,
            cloud_map_namespace=self.namespace,
            dns_record_type=servicediscovery.DnsRecordType.A,
            dns_ttl=Duration.seconds(10),
        )
