"""Lambda handler (inline code of the ShardCount function): publish the stream's open shard count.

Kinesis has no CloudWatch metric of its shard count, and the consumer services scale on it:
one task per N shards. Every minute this reads ``OpenShardCount`` and puts it as
``Wenu/OpenShardCount{StreamName}``; step scaling maps the value to a task count.
Standard library + boto3 (in the Lambda runtime) only, so it ships inline.
"""

import os

import boto3

kinesis = boto3.client("kinesis")
cloudwatch = boto3.client("cloudwatch")


def handler(event, context):  # Lambda's signature
    stream = os.environ["STREAM_NAME"]
    count = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["OpenShardCount"]
    cloudwatch.put_metric_data(
        Namespace=os.environ["NAMESPACE"],
        MetricData=[
            {
                "MetricName": "OpenShardCount",
                "Dimensions": [{"Name": "StreamName", "Value": stream}],
                "Value": count,
                "Unit": "Count",
            }
        ],
    )
    return {"stream": stream, "open_shards": count}
