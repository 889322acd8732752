"""The remaining re-send window, and the FIFO topic option that closes it.

A worker that dies after SNS accepted a notification and before the ledger
marked it leaves the entry pending; the next owner publishes it again. With a
FIFO topic (``<name>.fifo``) the message carries ``MessageDeduplicationId =
transition_id`` and SNS drops the repeat: an SQS FIFO subscriber receives each
transition once; a standard topic's subscriber receives the repeat.
"""

from __future__ import annotations

import json

import boto3
import pytest

from tests.integration.alarm_support import build, clients, drain, provision
from tests.integration.test_alarm_replay import SHARD, reference, stream

pytestmark = pytest.mark.integration


def subscribe_fifo(topic_arn: str, name: str) -> str:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"{name}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns").subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )
    return url


def died_before_the_mark(table: str) -> int:
    """Put every published ledger entry back to pending, as a worker killed between SNS and the mark leaves it."""
    ddb = boto3.client("dynamodb")
    items = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    for item in items:
        ddb.update_item(
            TableName=table,
            Key={"series": item["series"], "sk": item["sk"]},
            UpdateExpression="SET #st = :p, pending_shard = :s REMOVE claimed_by, claimed_until",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={":p": {"S": "pending"}, ":s": {"S": f"readings#{SHARD}"}},
        )
    return len(items)


@pytest.mark.parametrize("fifo", [True, False], ids=["fifo", "standard"])
async def test_a_notification_sent_again_after_a_crash_reaches_a_fifo_subscriber_once(
    aws_stack: object, unique_name: str, fifo: bool
) -> None:
    config, topic = provision(unique_name + (".fifo" if fifo else ""))
    assert topic.endswith(".fifo") == fifo
    attributes = boto3.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
    assert (attributes.get("FifoTopic") == "true") == fifo
    queue = subscribe_fifo(topic, unique_name) if fifo else _standard(topic, unique_name)
    readings = stream()
    async with clients() as (ddb, sns):
        first, _ = build(config, topic, ddb, sns)
        await first.write_readings(SHARD, readings)
        await first.flush()
        resent = died_before_the_mark(config.alarms.transitions_table)
        nxt, _ = build(config, topic, ddb, sns)
        await nxt.write_readings(SHARD, [])  # the next owner loads the shard and recovers the pending entries
    bodies = [json.dumps(body, separators=(",", ":")).encode() for body, _ in drain(queue)]
    expected = sum(reference(readings).values())
    assert resent == expected
    assert len(bodies) == (expected if fifo else 2 * expected)
    assert len(set(bodies)) == expected


def _standard(topic: str, name: str) -> str:
    from tests.integration.alarm_support import subscribe

    return subscribe(topic, name)
