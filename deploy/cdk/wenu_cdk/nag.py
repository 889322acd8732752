"""cdk-nag AwsSolutions findings the stack keeps on purpose, each with its reason.

What mattered for a data lake is fixed in the constructs, not acknowledged here: S3 server access
logs of the archive and data buckets (to the logs bucket), VPC flow logs, rotation of the catalog's
secrets, Redshift TLS and audit logging, the latest Lambda runtime, and scrape ports opened to the
collector's security group only (no CIDR). Everything below is acknowledged as narrowly as cdk-nag
allows: IAM wildcards by the exact pattern they have (a bucket prefix, a table's indexes), on the
construct that holds them. ``tests/deploy/test_cdk_security.py`` fails on any finding not listed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import Stack
from aws_cdk import aws_ecs as ecs
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import IConstruct

if TYPE_CHECKING:
    from .stack import WenuStack

EVERYTHING = "Resource::*"


def _ack(construct: IConstruct, rule: str, reason: str, *applies_to: Any) -> None:
    NagSuppressions.add_resource_suppressions(
        construct,
        [NagPackSuppression(id=rule, reason=reason, applies_to=list(applies_to) or None)],
        apply_to_children=True,
    )


def acknowledge(stack: WenuStack) -> None:
    """Acknowledge the findings the stack keeps (called once the stack is built)."""
    _stack_wide(stack)
    _tasks(stack)
    _functions(stack)
    _resources(stack)


def _stack_wide(stack: Stack) -> None:
    """Wildcards that are the narrowest form of a grant: a prefix of a bucket, the indexes of a table."""
    NagSuppressions.add_stack_suppressions(
        stack,
        [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="Objects under one prefix of the stage's own bucket (dead letters, staging, manifests, "
                "quarantine, raw archive, IoT errors): object keys are not known in advance",
                applies_to=[
                    RegexAppliesTo(
                        regex=r"/^Resource::<Storage(Data|Archive)[0-9A-F]{8}\.Arn>\/"
                        r"(dead-letter|staging|manifests|quarantine|iot-errors)\/([a-z]+\/)?\*$/"
                    )
                ],
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="The indexes of one table of the stage (their names are part of the table's schema)",
                applies_to=[
                    RegexAppliesTo(regex=r"/^Resource::<StorageWenu[A-Za-z]+[0-9A-F]{8}\.Arn>\/index\/\*$/"),
                    RegexAppliesTo(
                        regex=r"/^Resource::arn:<AWS::Partition>:dynamodb:(<AWS::Region>|[a-z0-9-]+):<AWS::AccountId>:table\/"
                        r"wenu-[a-z0-9]+-(alarms|processing)(-WorkerMetricStats|-CoordinatorState)?\/index\/\*$/"
                    ),
                ],
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM4",
                reason="AWSLambdaBasicExecutionRole only lets a function write its own logs",
                applies_to=[
                    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
                ],
            ),
        ],
    )


def _tasks(stack: WenuStack) -> None:
    for task in (c for c in stack.node.find_all() if isinstance(c, ecs.TaskDefinition)):
        _ack(
            task,
            "AwsSolutions-ECS2",
            "The environment holds resource names and settings only; secrets come from Secrets Manager",
        )
        if task.execution_role is not None:
            _ack(
                task.execution_role,
                "AwsSolutions-IAM5",
                "ecr:GetAuthorizationToken has no resource type (CDK's execution role for pulling the image)",
                EVERYTHING,
            )


def _functions(stack: WenuStack) -> None:
    _ack(
        stack.shard_count.function,
        "AwsSolutions-IAM5",
        "cloudwatch:PutMetricData has no resource type; the condition pins the namespace Wenu",
        EVERYTHING,
    )
    catalog = stack.catalog
    _ack(
        catalog.node.find_child("WaitTask"),
        "AwsSolutions-IAM5",
        "Task ids are unknown until RunTask; ecs:DescribeTasks is conditioned on the stage's cluster",
        EVERYTHING,
    )
    runner = catalog.node.find_child("Runner")
    _ack(
        runner,
        "AwsSolutions-IAM5",
        "CDK's custom-resource provider invokes its own functions and their versions (<function>:*)",
        RegexAppliesTo(regex=r"/^Resource::<Catalog(RunTask|WaitTask|Runner\w+)[0-9A-F]{8}\.Arn>:\*$/"),
    )
    _ack(runner, "AwsSolutions-SF1", "CDK's provider waiter: its functions log every step; no state to log")
    _ack(runner, "AwsSolutions-SF2", "CDK's provider waiter: a deploy-time poll, X-Ray adds nothing")
    _ack(
        stack.warehouse.node.find_child("LoadRole"),
        "AwsSolutions-IAM5",
        "Data API statement ids have no ARN; DescribeStatement and GetStatementResult are limited to the "
        "role's own statements (redshift-data:statement-owner-iam-userid)",
        EVERYTHING,
    )


def _resources(stack: WenuStack) -> None:
    s = stack.settings
    _ack(
        stack.ingest.firehose,
        "AwsSolutions-KDF1",
        "Firehose takes no server-side encryption setting when its source is a Kinesis stream: records are "
        "encrypted at rest in the stream (KMS) and land SSE-S3 in the archive bucket",
    )
    _ack(
        stack.ingest.firehose,
        "AwsSolutions-IAM5",
        "CDK's S3 destination grant to Firehose, on the archive bucket only",
        "Action::s3:GetObject*",
        "Action::s3:GetBucket*",
        "Action::s3:List*",
        "Action::s3:DeleteObject*",
        "Action::s3:Abort*",
        RegexAppliesTo(regex=r"/^Resource::<StorageArchive[0-9A-F]{8}\.Arn>\/\*$/"),
        RegexAppliesTo(regex=r"/^Resource::<IngestArchiveProcessor[0-9A-F]{8}\.Arn>:\*$/"),  # its versions
    )
    _ack(
        stack.services.keyring_secret,
        "AwsSolutions-SMG4",
        "The KMS-wrapped key ring is not a credential: its wrapping key rotates yearly (KMS) and meter keys "
        "are rotated by adding keys to the ring",
    )
    _ack(
        stack.api.session_secret,
        "AwsSolutions-SMG4",
        "The backoffice's cookie key: rotating it signs every user out, so it is rotated by hand "
        "(put a new value, then redeploy the API)",
    )
    _ack(
        stack.catalog.instance, "AwsSolutions-RDS11", "Private subnets, reachable from the stage's tasks only"
    )
    if not s.catalog_multi_az:
        _ack(
            stack.catalog.instance,
            "AwsSolutions-RDS3",
            "Single-AZ by choice here; -c wenu:catalogMultiAz=true",
        )
    if stack.warehouse.cluster is not None:
        _ack(
            stack.warehouse.cluster,
            "AwsSolutions-RS4",
            "The cluster admits no inbound traffic at all (Data API)",
        )
    _ack(
        stack.warehouse.node.find_child("ScheduleDeadLetters"),
        "AwsSolutions-SQS3",
        "It is the dead-letter queue (of the warehouse load schedule)",
    )
    api = stack.api.load_balancer
    if s.api_certificate_arn:
        _ack(api, "AwsSolutions-EC23", "The public API: HTTPS (443, and 80 redirecting) from anywhere")
    else:
        _ack(
            api,
            "CdkNagValidationFailure",
            "The internal load balancer admits port 80 from the VPC's CIDR (a token cdk-nag cannot read)",
        )
    if not s.region:
        _ack(
            api,
            "AwsSolutions-ELB2",
            "An environment-agnostic stack cannot name the region's log-delivery principal; "
            "pass -c wenu:region=<region> to enable access logs",
        )
