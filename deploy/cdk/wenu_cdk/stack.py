"""The whole wenu-stream stack in one environment-agnostic CloudFormation stack."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from constructs import Construct, Node

from .ingest import Ingest
from .naming import Names, SettingError
from .scaling import ShardCountMetric
from .services import Services
from .storage import Storage


class StackSettings:
    """What differs between deployments, from the app's context (cdk.json or ``-c key=value``).

    ``stage`` (``-c stage=prod``) names every physical resource (``naming.Names``), so stages deploy
    side by side in one account; the stack itself is ``WenuStream-<stage>``.
    """

    def __init__(
        self,
        *,
        stage: str = "dev",
        image_repository: str = "wenu-stream",
        image_tag: str = "latest",
        shards: int = 4,
        max_shards: int = 64,
    ) -> None:
        if not 1 <= shards <= max_shards:
            raise SettingError(
                f"wenu:shards={shards} must be between 1 and wenu:maxShards={max_shards}; "
                "fix: pass -c wenu:shards=<n> within that range, or raise wenu:maxShards"
            )
        self.names = Names(stage)  # checks the stage name
        self.image_repository, self.image_tag = image_repository, image_tag
        self.shards, self.max_shards = shards, max_shards

    @classmethod
    def from_context(cls, node: Node) -> StackSettings:
        def get(key: str, default: Any) -> Any:
            value = node.try_get_context(f"wenu:{key}")
            try:
                return default if value is None else type(default)(value)
            except ValueError:
                raise SettingError(
                    f"wenu:{key}={value!r} is not a {type(default).__name__}; "
                    f"fix: pass -c wenu:{key}=<value> like the default {default!r} (cdk.json)"
                ) from None

        return cls(
            stage=node.try_get_context("stage") or "dev",
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
        settings = settings or StackSettings()
        super().__init__(
            scope,
            id,
            description=(
                f"wenu-stream, stage {settings.names.stage}: meter readings through Kinesis "
                "to alarms, stats and the warehouse"
            ),
            **kwargs,
        )
        names = self.names = settings.names
        self.storage = Storage(self, "Storage", names=names)
        self.ingest = Ingest(
            self, "Ingest", names=names, archive=self.storage.archive, shards=settings.shards
        )
        self.shard_count = ShardCountMetric(self, "ShardCount", stream=self.ingest.stream)
        # A reference by name, not a lookup: the repository is created and pushed to by the image build.
        repository = ecr.Repository.from_repository_name(self, "Repository", settings.image_repository)
        image = ecs.ContainerImage.from_ecr_repository(repository, settings.image_tag)
        self.services = Services(
            self,
            "Services",
            names=names,
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
