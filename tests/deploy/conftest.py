"""Deploy tests: the CDK stack synthesised once per session, the image build script, the ECS entrypoint.

Tests that need Node and the jsii runtime (every CDK test) carry the ``cdk`` marker;
``pytest -m "not cdk"`` leaves them out of a quick run. ``make test`` runs them all.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CDK_DIR = ROOT / "deploy" / "cdk"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cdk: synthesises the AWS CDK app (needs Node.js and the jsii runtime)"
    )


@pytest.fixture(scope="session")
def synth() -> Iterator[Any]:
    """The synthesised stack: ``(template, template_json, stack)``; one synthesis per test session (~30 s)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
    sys.path.insert(0, str(CDK_DIR))
    try:
        import aws_cdk as cdk
        from aws_cdk.assertions import Template
        from wenu_cdk.stack import WenuStack

        app = cdk.App(context={"aws:cdk:enable-path-metadata": False})
        stack = WenuStack(app, "WenuStream")
        assembly = app.synth()  # once; the assertions Template reads the synthesised stack
        template = Template.from_json(assembly.get_stack_by_name(stack.stack_name).template)
        yield template, template.to_json(), stack, assembly
    finally:
        sys.path.remove(str(CDK_DIR))


def task_definition_json(app: str) -> dict[str, Any]:
    return json.loads((ROOT / "deploy" / "ecs" / f"task-definition-{app}.json").read_text())
