"""Lambda handler (inline code of the raw archive's Firehose processor): one JSON line per Kinesis record.

Firehose concatenates what it delivers, and a v1 envelope carries no length, so the bytes of two
records put side by side cannot be told apart again. This processor turns each record into one
line that can:

    {"shard": "shardId-...", "seq": "<sequence number>", "sub": <subsequence>, "pk": "<partition key>",
     "at": <arrival, epoch ms>, "data": "<base64 of the record's bytes>"}\n

``wenu-stream archive replay`` reads these lines back (``wenu_stream.ops.archive``) and feeds the
records through the pipeline under their own shard and sequence number, so a replay is as idempotent
as any other. Standard library only, so it ships inline.
"""

import base64
import json


def handler(event, context):  # Lambda's signature
    return {"records": [transform(record) for record in event["records"]]}


def transform(record):
    meta = record.get("kinesisRecordMetadata", {})
    line = {
        "shard": meta.get("shardId", ""),
        "seq": meta.get("sequenceNumber", ""),
        "sub": int(meta.get("subsequenceNumber") or 0),
        "pk": meta.get("partitionKey", ""),
        "at": int(meta.get("approximateArrivalTimestamp") or record.get("approximateArrivalTimestamp") or 0),
        "data": record["data"],  # already base64: kept as it came
    }
    text = json.dumps(line, separators=(",", ":")) + "\n"
    return {
        "recordId": record["recordId"],
        "result": "Ok",
        "data": base64.b64encode(text.encode("ascii")).decode("ascii"),
    }
