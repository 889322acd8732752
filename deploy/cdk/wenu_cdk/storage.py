"""Durable state: the key-ring KMS key, the S3 buckets, the DynamoDB tables and the alarms topic.

Tables, the topic and the key alias carry the stage's names (``naming.Names``), which reach the
tasks as ``WENU_*`` variables; the S3 prefixes are the application's defaults (``wenu_stream.config``).
Bucket names are left to CloudFormation (they are global) and passed to the tasks.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from wenu_stream.aws import tables
from wenu_stream.config import Config

from .naming import Names

DEFAULTS = Config()
# The S3 prefixes of the data bucket (the consumers' defaults; quarantine's is fixed in the app).
DEAD_LETTER = DEFAULTS.sinks.dead_letter_prefix
STAGING = DEFAULTS.warehouse.staging_prefix
MANIFESTS = DEFAULTS.warehouse.manifest_prefix
QUARANTINE = "quarantine/"
RAW = "raw/"
# Encryption context every wrapped data key of the key ring carries; Decrypt is allowed only with it.
KEYRING_CONTEXT = {"purpose": "wenu-keyring"}


class Storage(Construct):
    """Key, buckets, tables and topic, retained when the stack is deleted (they hold the data)."""

    def __init__(self, scope: Construct, id: str, *, names: Names) -> None:
        super().__init__(scope, id)
        self.keyring_key = kms.Key(
            self,
            "KeyRingKey",
            alias=names.keyring_alias,
            enable_key_rotation=True,
            description="Wraps the data keys of the wenu-stream key ring (AES-GCM keys of the meters)",
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Access logs of the buckets and the load balancer (SSE-S3: the only encryption ALB logs support).
        self.logs = s3.Bucket(
            self,
            "Logs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="logs-expire", expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.archive = self._bucket(
            "Archive",
            [
                s3.LifecycleRule(
                    id="raw-tiering",
                    prefix=RAW,
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(30),
                        ),
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                            transition_after=Duration.days(90),
                        ),
                        s3.Transition(
                            storage_class=s3.StorageClass.DEEP_ARCHIVE, transition_after=Duration.days(365)
                        ),
                    ],
                ),
                s3.LifecycleRule(id="errors-expire", prefix="raw-errors/", expiration=Duration.days(90)),
            ],
        )
        self.data = self._bucket(
            "Data",
            [
                # Dead letters and quarantined readings wait for an operator's re-drive; 90 days is the window.
                s3.LifecycleRule(id="dead-letters-expire", prefix=DEAD_LETTER, expiration=Duration.days(90)),
                s3.LifecycleRule(id="quarantine-expire", prefix=QUARANTINE, expiration=Duration.days(90)),
                # Staged files are loaded within minutes; kept 30 days for a reload, then the warehouse has them.
                s3.LifecycleRule(id="staging-expire", prefix=STAGING, expiration=Duration.days(30)),
                s3.LifecycleRule(id="manifests-expire", prefix=MANIFESTS, expiration=Duration.days(30)),
            ],
        )
        # Construct ids stay the same in every stage (the logical ids of the template do not move).
        # Keys, indexes and TTL from the specs the workers provision from (wenu_stream.aws.tables).
        self.state_table = self._table("WenuState", names.state_table, tables.STATE)
        self.stats_table = self._table("WenuStats", names.stats_table, tables.STATS)
        self.alarm_state_table = self._table("WenuAlarmState", names.alarm_state_table, tables.ALARM_STATE)
        self.transitions_table = self._table(
            "WenuAlarmTransitions", names.transitions_table, tables.TRANSITIONS
        )
        self.alarms_topic = sns.Topic(
            self,
            "AlarmsTopic",
            topic_name=names.topic,
            display_name="wenu-stream alarms",
            enforce_ssl=True,
        )

    def _bucket(self, id: str, rules: list[s3.LifecycleRule]) -> s3.Bucket:
        every = s3.LifecycleRule(
            id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
        )
        return s3.Bucket(
            self,
            id,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=False,
            lifecycle_rules=[every, *rules],
            server_access_logs_bucket=self.logs,  # who read or wrote what, for the data lake's audit
            server_access_logs_prefix=f"s3/{id.lower()}/",
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _table(self, id: str, name: str, spec: tables.TableSpec) -> dynamodb.TableV2:
        def attribute(key: tables.Key) -> dynamodb.Attribute:
            kind = dynamodb.AttributeType.NUMBER if key.type == "N" else dynamodb.AttributeType.STRING
            return dynamodb.Attribute(name=key.name, type=kind)

        gsis = [
            dynamodb.GlobalSecondaryIndexPropsV2(
                index_name=index.name,
                partition_key=attribute(index.hash),
                sort_key=attribute(index.range) if index.range else None,
                projection_type=dynamodb.ProjectionType(index.projection),
            )
            for index in spec.indexes
        ]
        return dynamodb.TableV2(
            self,
            id,
            table_name=name,
            partition_key=attribute(spec.hash),
            sort_key=attribute(spec.range) if spec.range else None,
            billing=dynamodb.Billing.on_demand(),
            time_to_live_attribute=spec.ttl_attribute,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            global_secondary_indexes=gsis or None,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
