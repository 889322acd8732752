"""The whole wenu-stream stack in one environment-agnostic CloudFormation stack."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from constructs import Construct, Node

from .ingest import Ingest
from .scaling import ShardCountMetric
from .services import Services
from .storage import Storage


class StackSettings:
    """What differs between deployments, from the app's context (cdk.json or ``-c key=value``)."""

    def __init__(
        self,
        *,
        image_repository: str = "wenu-stream",
        image_tag: str = "latest",
        shards: int = 4,
        max_shards: int = 64,
    ) -> None:
        if not 1 <= shards <= max_shards:
            raise ValueError(f"wenu:shards={shards} must be between 1 and wenu:maxShards={max_shards}")
        self.image_repository, self.image_tag = image_repository, image_tag
        self.shards, self.max_shards = shards, max_shards

    @classmethod
    def from_context(cls, node: Node) -> StackSettings:
        def get(key: str, default: Any) -> Any:
            value = node.try_get_context(f"wenu:{key}")
            return default if value is None else type(default)(value)

        return cls(
            image_repository=get("imageRepository", "wenu-stream"),
            image_tag=get("imageTag", "latest"),
            shards=get("shards", 4),
            max_shards=get("maxShards", 64),
        )


class WenuStack(cdk.Stack):
    """Storage, ingest (IoT -> Kinesis -> Firehose -> S3), the two consumer services and their scaling."""

    def __init__(
        self, scope: Construct, id: str, *, settings: StackSettings | None = None, **kwargs: Any
    ) -> None:
        super().__init__(
            scope,
            id,
            description="wenu-stream: meter readings through Kinesis to alarms, stats and the warehouse",
            **kwargs,
        )
        settings = settings or StackSettings()
        self.storage = Storage(self, "Storage")
        self.ingest = Ingest(self, "Ingest", archive=self.storage.archive, shards=settings.shards)
        self.shard_count = ShardCountMetric(self, "ShardCount", stream=self.ingest.stream)
        # A reference by name, not a lookup: the repository is created and pushed to by the image build.
        repository = ecr.Repository.from_repository_name(self, "Repository", settings.image_repository)
        image = ecs.ContainerImage.from_ecr_repository(repository, settings.image_tag)
        self.services = Services(
            self,
            "Services",
            storage=self.storage,
            ingest=self.ingest,
            image=image,
            shard_metric=self.shard_count.metric,
            max_shards=settings.max_shards,
        )
        for name, value in (
            ("StreamName", self.ingest.stream.stream_name),
            ("DataBucket", self.storage.data.bucket_name),
            ("ArchiveBucket", self.storage.archive.bucket_name),
            ("AlarmsTopicArn", self.storage.alarms_topic.topic_arn),
            ("KeyRingKeyArn", self.storage.keyring_key.key_arn),
        ):
            cdk.CfnOutput(self, name, value=value)
