"""Test-local fakes for the protocol tests: a ShardProcessor that records what the driver asked of it."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from io import StringIO
from typing import Any

from wenu_stream.errors import SinkError
from wenu_stream.model import KinesisRecord


class FakeShardProcessor:
    """Answers ``process`` from a script of booleans (True: durable, checkpoint now) or exceptions."""

    def __init__(
        self, events: list[Any], answers: Sequence[bool | Exception] = (), flush_to: str | None = None
    ) -> None:
        self.events = events
        self.answers = list(answers)
        self.flush_to = flush_to
        self.batches: list[list[KinesisRecord]] = []

    async def initialize(
        self, shard_id: str, checkpoint: str | None, parent_shard_ids: Sequence[str]
    ) -> None:
        self.events.append(("initialize", shard_id, checkpoint, tuple(parent_shard_ids)))

    async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> bool:
        self.batches.append(list(records))
        self.events.append(("process", [r.sequence_number for r in records], millis_behind_latest))
        answer = self.answers.pop(0) if self.answers else True
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def flush(self) -> str | None:
        self.events.append(("flush",))
        return self.flush_to

    async def shard_ended(self) -> None:
        self.events.append(("shard_ended",))

    async def close(self) -> None:
        self.events.append(("close",))


class FailingSinkProcessor(FakeShardProcessor):
    """Every batch fails as if a sink stayed down after its retries."""

    async def process(self, records: Sequence[KinesisRecord], millis_behind_latest: int | None) -> bool:
        raise SinkError("dead_letter: still failing after 6 attempts")


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
