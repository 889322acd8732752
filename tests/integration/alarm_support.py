"""Helpers of the alarm integration tests: tables, topic, subscribed queues, sinks on real moto clients."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import boto3
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from wenu_stream.alarms.rules import AlarmRule, parse_rules
from wenu_stream.alarms.sink import AlarmsSink
from wenu_stream.aws.alarm_state import DynamoAlarmStateStore
from wenu_stream.aws.notifier import SnsNotifier
from wenu_stream.aws.provision import ensure_alarm_tables, ensure_alarm_topic
from wenu_stream.config import Config, load_config
from wenu_stream.model import SeriesReading

T0 = 1_764_300_000_000  # 2025-11-28T03:20:00Z
MIN = 60_000


def provision(name: str) -> tuple[Config, str]:
    """Fresh tables and topic for one test; return the config and the topic ARN (read from the service)."""
    config = load_config(
        {},
        {
            "alarms.state_table": f"{name}-state",
            "alarms.transitions_table": f"{name}-tr",
            "alarms.topic_name": name,
            "kinesis.stream": "readings",
        },
    )
    ensure_alarm_tables(config, {})
    (created,) = ensure_alarm_topic(config, {})
    return config, created.removeprefix("sns topic ")


def subscribe(
    topic_arn: str, name: str, filter_policy: dict[str, Any] | None = None, *, raw: bool = True
) -> str:
    """An SQS queue subscribed to the topic (raw delivery, or the SNS envelope); return its URL."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"RawMessageDelivery": "true" if raw else "false"}
    if filter_policy is not None:
        attributes["FilterPolicy"] = json.dumps(filter_policy)
    boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return url


def drain(url: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Receive and delete everything in the queue: (body, string message attributes) per message."""
    sqs = boto3.client("sqs")
    out: list[tuple[dict[str, Any], dict[str, str]]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not got:
            return out
        for m in got:
            attrs = {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}
            out.append((json.loads(m["Body"]), attrs))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def reading(
    series: str, t: int, value: float, *, kind: str = "gauge", company: str = "acme", site: str = "hq"
) -> SeriesReading:
    return SeriesReading(
        series=series,
        company=company,
        site=site,
        timezone="Europe/Madrid",
        kind=kind,
        unit="kWh" if kind == "counter" else "W",
        device=f"EM-{series}",
        ch="c",
        seq=t // 1000,
        index=0,
        t=t,
        value=float(value),
        raw_value=float(value),
    )


RULES: list[AlarmRule] = parse_rules([
    {"type": "threshold", "id": "hot", "severity": "critical", "series": "temp", "op": ">", "value": 30,
     "clear": 25, "for_s": 120},
    {"type": "rate_of_change", "id": "jump", "severity": "major", "series": "power",
     "max_abs_delta_per_min": 100},
    {"type": "stuck", "id": "frozen", "severity": "minor", "series": "volts", "count": 3},
    {"type": "no_data", "id": "silent", "severity": "warning", "match": {"company": "acme"}, "after_s": 600},
    {"type": "consumption", "id": "thirsty", "severity": "major", "series": "water", "window": "15m",
     "max": 50},
])  # fmt: skip


@contextlib.asynccontextmanager
async def clients(sns_endpoint: str | None = None) -> AsyncIterator[tuple[Any, Any]]:
    """DynamoDB and SNS clients; ``sns_endpoint`` points SNS elsewhere (a closed port, for an outage)."""
    session = get_session()
    quick = AioConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=5)
    async with contextlib.AsyncExitStack() as stack:
        ddb = await stack.enter_async_context(session.create_client("dynamodb"))
        if sns_endpoint is None:
            sns = await stack.enter_async_context(session.create_client("sns"))
        else:
            sns = await stack.enter_async_context(
                session.create_client("sns", endpoint_url=sns_endpoint, config=quick)
            )
        yield ddb, sns


def build(
    config: Config,
    topic: str,
    ddb: Any,
    sns: Any,
    rules: Sequence[AlarmRule] = RULES,
    give_up_s: float = 30.0,
    wall_ms: Any = None,
    describe: Any = None,
) -> tuple[AlarmsSink, SnsNotifier]:
    """A sink over the test's tables, and its notifier (tests swap ``notifier.sns`` to stage an outage)."""
    state = DynamoAlarmStateStore(ddb, table=config.alarms.state_table, stream=config.kinesis.stream)
    notifier = SnsNotifier(
        sns,
        ddb,
        topic_arn=topic,
        table=config.alarms.transitions_table,
        stream=config.kinesis.stream,
        give_up_s=give_up_s,
        backoff_cap_s=0.2,
        describe=describe,
    )
    extra = {} if wall_ms is None else {"wall_ms": wall_ms}
    return AlarmsSink(state, notifier, rules=rules, idle_tick_s=config.alarms.idle_tick_s, **extra), notifier


def build_sink(
    config: Config,
    topic: str,
    ddb: Any,
    sns: Any,
    rules: Sequence[AlarmRule] = RULES,
    give_up_s: float = 30.0,
    wall_ms: Any = None,
) -> AlarmsSink:
    return build(config, topic, ddb, sns, rules, give_up_s, wall_ms)[0]


def closed_port_url() -> str:
    """An http URL on loopback where nothing listens (connection refused): an SNS outage."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
