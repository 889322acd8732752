"""The CloudWatch metric the services scale on: the readings stream's open shard count.

A tiny scheduled Lambda publishes ``Wenu/OpenShardCount`` every minute (Kinesis
itself publishes no shard-count metric). Each service then uses step scaling with
exact capacities: ``ceil(shards / shards_per_task)`` tasks, so every task holds
about the same number of leases and KCL balances them. Resharding (UpdateShardCount)
moves the metric within a minute and the service within the policy's cooldown.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

NAMESPACE = "Wenu"
HANDLER = Path(__file__).with_name("shard_count_handler.py")


class ShardCountMetric(Construct):
    """The publisher function, its schedule, and ``metric`` (maximum over one minute)."""

    def __init__(self, scope: Construct, id: str, *, stream: kinesis.IStream) -> None:
        super().__init__(scope, id)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.handler",
            code=lambda_.Code.from_inline(HANDLER.read_text(encoding="utf-8")),
            timeout=Duration.seconds(30),
            memory_size=128,
            environment={"STREAM_NAME": stream.stream_name, "NAMESPACE": NAMESPACE},
            log_group=logs.LogGroup(self, "Logs", retention=logs.RetentionDays.ONE_WEEK),
            description="Publishes the readings stream's open shard count for the consumers' scaling",
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["kinesis:DescribeStreamSummary"], resources=[stream.stream_arn])
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource type
                conditions={"StringEquals": {"cloudwatch:namespace": NAMESPACE}},
            )
        )
        events.Rule(
            self,
            "EveryMinute",
            schedule=events.Schedule.rate(Duration.minutes(1)),
            targets=[targets.LambdaFunction(self.function)],
        )
        self.metric = cloudwatch.Metric(
            namespace=NAMESPACE,
            metric_name="OpenShardCount",
            dimensions_map={"StreamName": stream.stream_name},
            statistic="Maximum",
            period=Duration.minutes(1),
        )
