"""Logs are JSON lines on stderr; stdout stays free for the KCL protocol."""

from __future__ import annotations

import io
import json

import structlog

from wenu_stream.log import configure_logging, get_logger


def test_unconfigured_logging_goes_to_stderr_not_stdout(capsys) -> None:  # type: ignore[no-untyped-def]
    structlog.reset_defaults()
    get_logger("t").info("hello", shard_id="s-1")
    out, err = capsys.readouterr()
    assert out == ""
    assert json.loads(err.strip().splitlines()[-1])["event"] == "hello"


def test_configured_lines_are_json_with_bound_context() -> None:
    buf = io.BytesIO()
    configure_logging("info", stream=buf)
    structlog.contextvars.bind_contextvars(shard_id="shardId-000")
    try:
        get_logger().info("batch", records=3)
        get_logger().debug("hidden")
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert [(x["event"], x["shard_id"], x["level"]) for x in lines] == [("batch", "shardId-000", "info")]
