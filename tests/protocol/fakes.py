"""Protocol-test helpers: the daemon side of stdout, and the KCL messages a test scripts (the fake processor is
``tests.support.processors``)."""

from __future__ import annotations

import base64
import json
from io import StringIO
from typing import Any


class RecordingOutput(StringIO):
    """The daemon side of stdout: also logs each protocol action into the shared event list, in order."""

    def __init__(self, events: list[Any]) -> None:
        super().__init__()
        self.events = events

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                message = json.loads(line)
                self.events.append(
                    (
                        "out",
                        message["action"],
                        message.get("sequenceNumber"),
                        message.get("subSequenceNumber"),
                        message.get("responseFor"),
                    )
                )
        return super().write(text)


def record(
    seq: str, data: bytes = b"payload", sub: int = 0, key: str = "dev-1", arrival_ms: int = 1_700_000_000_123
) -> dict[str, Any]:
    """A record as the MultiLangDaemon sends it in processRecords."""
    return {
        "action": "record",
        "data": base64.b64encode(data).decode(),
        "partitionKey": key,
        "sequenceNumber": seq,
        "subSequenceNumber": sub,
        "approximateArrivalTimestamp": arrival_ms,
    }


def initialize(
    shard: str = "shardId-000000000000", seq: str | None = "TRIM_HORIZON", sub: int = 0
) -> dict[str, Any]:
    return {"action": "initialize", "shardId": shard, "sequenceNumber": seq, "subSequenceNumber": sub}


def process_records(*records: dict[str, Any], behind: int = 0) -> dict[str, Any]:
    return {"action": "processRecords", "millisBehindLatest": behind, "records": list(records)}


def checkpoint_ok(seq: str | None, sub: int | None = None) -> dict[str, Any]:
    return {"action": "checkpoint", "sequenceNumber": seq, "subSequenceNumber": sub}


def checkpoint_error(error: str, seq: str | None = None, sub: int | None = None) -> dict[str, Any]:
    return {"action": "checkpoint", "sequenceNumber": seq, "subSequenceNumber": sub, "error": error}


def script(*messages: dict[str, Any]) -> str:
    return "".join(json.dumps(m) + "\n" for m in messages)
