"""The scaling metric's publisher (deploy/cdk/wenu_cdk/shard_count_handler.py) against the local stack."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fixtures.aws import create_stream

HANDLER = Path(__file__).resolve().parents[2] / "deploy" / "cdk" / "wenu_cdk" / "shard_count_handler.py"


@pytest.mark.integration
def test_publishes_the_open_shard_count_as_the_metric_the_services_scale_on(
    aws_stack: Any, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_stream(unique_name, shards=3)
    monkeypatch.setenv("STREAM_NAME", unique_name)
    monkeypatch.setenv("NAMESPACE", "Wenu")
    spec = importlib.util.spec_from_file_location("shard_count_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # builds its clients from the SDK environment, as in Lambda

    assert module.handler({}, None) == {"stream": unique_name, "open_shards": 3}
    metrics = boto3.client("cloudwatch").list_metrics(
        Namespace="Wenu",
        MetricName="OpenShardCount",
        Dimensions=[{"Name": "StreamName", "Value": unique_name}],
    )
    assert len(metrics["Metrics"]) == 1
