"""Ingest: the readings stream, the IoT topic rule that feeds it, and Firehose archiving it to S3 raw/.

Meters publish binary envelopes (docs/wire-format.md) on ``wenu/<stage>/readings/<device>``.
The rule passes the bytes through unchanged (``SELECT *`` keeps a binary payload
as is) with the device as partition key, so a device's messages stay in order on
one shard. A record the rule cannot put goes to the archive bucket's ``iot-errors/``.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .naming import Names
from .storage import RAW

ARCHIVE_PROCESSOR = Path(__file__).with_name("archive_processor.py")
# Hive-style date partitions (UTC arrival time at Firehose), so Athena/Glue prune by day and hour.
RAW_PREFIX = RAW + "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
RAW_ERROR_PREFIX = (
    "raw-errors/!{firehose:error-output-type}/"
    "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
)


class Ingest(Construct):
    """Stream, IoT rule into it, Firehose out of it."""

    def __init__(self, scope: Construct, id: str, *, names: Names, archive: s3.IBucket, shards: int) -> None:
        super().__init__(scope, id)
        self.names = names
        self.stream = kinesis.Stream(
            self,
            "Readings",
            stream_name=names.stream,
            shard_count=shards,
            stream_mode=kinesis.StreamMode.PROVISIONED,
            retention_period=Duration.days(7),
            # AWS-managed key: encrypted at rest without a KMS grant per reader (payloads are AES-GCM anyway).
            encryption=kinesis.StreamEncryption.MANAGED,
        )
        self.rule = self._topic_rule(archive)
        # One JSON line per record (base64 data, shard, sequence number, partition key, arrival time): the
        # concatenated envelopes alone could not be split again. `wenu-stream archive replay` reads them.
        self.archive_processor = lambda_.Function(
            self,
            "ArchiveProcessor",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.handler",
            code=lambda_.Code.from_inline(ARCHIVE_PROCESSOR.read_text(encoding="utf-8")),
            timeout=Duration.minutes(1),
            memory_size=256,
            log_group=logs.LogGroup(self, "ArchiveProcessorLogs", retention=logs.RetentionDays.ONE_MONTH),
            description="Firehose processor of the raw archive: one JSON line per Kinesis record",
        )
        self.firehose = firehose.DeliveryStream(
            self,
            "RawArchive",
            delivery_stream_name=names.firehose,
            source=firehose.KinesisStreamSource(self.stream),
            destination=firehose.S3Bucket(
                archive,
                data_output_prefix=RAW_PREFIX,
                error_output_prefix=RAW_ERROR_PREFIX,
                compression=firehose.Compression.GZIP,
                # Large, infrequent objects: the archive is read in bulk, never per record.
                buffering_interval=Duration.minutes(5),
                buffering_size=Size.mebibytes(128),
                processor=firehose.LambdaFunctionProcessor(
                    self.archive_processor,
                    buffer_interval=Duration.minutes(1),
                    buffer_size=Size.mebibytes(3),  # base64 and JSON grow a batch by ~1.4x; Lambda takes 6 MB
                    retries=3,
                ),
            ),
        )

    def _topic_rule(self, archive: s3.IBucket) -> iot.CfnTopicRule:
        role = iam.Role(
            self,
            "IotRuleRole",
            assumed_by=iam.ServicePrincipal("iot.amazonaws.com"),
            description="IoT topic rule: put meter envelopes into the readings stream",
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["kinesis:PutRecord"], resources=[self.stream.stream_arn])
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[archive.arn_for_objects("iot-errors/*")])
        )
        return iot.CfnTopicRule(
            self,
            "ReadingsRule",
            rule_name=self.names.iot_rule,
            topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                sql=f"SELECT * FROM '{self.names.iot_topic_filter}'",
                aws_iot_sql_version="2016-03-23",
                rule_disabled=False,
                description="Meter envelopes (binary, passed through) into Kinesis, keyed by device",
                actions=[
                    iot.CfnTopicRule.ActionProperty(
                        kinesis=iot.CfnTopicRule.KinesisActionProperty(
                            stream_name=self.stream.stream_name,
                            partition_key=self.names.iot_device_key,
                            role_arn=role.role_arn,
                        )
                    )
                ],
                error_action=iot.CfnTopicRule.ActionProperty(
                    s3=iot.CfnTopicRule.S3ActionProperty(
                        bucket_name=archive.bucket_name,
                        key=f"iot-errors/{self.names.iot_device_key}/${{timestamp()}}-${{newuuid()}}",
                        role_arn=role.role_arn,
                    )
                ),
            ),
        )
