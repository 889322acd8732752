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
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
CDK_DIR = ROOT / "deploy" / "cdk"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cdk: synthesises the AWS CDK app (needs Node.js and the jsii runtime)"
    )


STAGES = ("dev", "prod")  # synthesised side by side in one app, as two stacks in one account would be
# dev: the defaults (environment-agnostic, internal API); prod: the production settings of deploy/README.md.
CERTIFICATE = "arn:aws:acm:eu-west-1:111122223333:certificate/00000000-0000-0000-0000-000000000000"
ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_example"
SETTINGS: dict[str, dict[str, Any]] = {
    "dev": {},
    "prod": {
        "region": "eu-west-1",
        "catalog_multi_az": True,
        "api_certificate_arn": CERTIFICATE,
        "api_oidc_issuer": ISSUER,
        "api_oidc_audience": "example-client",
    },
}


class Synthesised(NamedTuple):
    template: Any  # aws_cdk.assertions.Template
    json: dict[str, Any]
    stack: Any  # wenu_cdk.stack.WenuStack
    assembly: Any  # aws_cdk.cx_api.CloudAssembly


@pytest.fixture(scope="session")
def stages() -> Iterator[dict[str, Synthesised]]:
    """Both stages of ``STAGES`` in one app and one synthesis per test session (~10 s)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
    sys.path.insert(0, str(CDK_DIR))
    try:
        import aws_cdk as cdk
        from aws_cdk.assertions import Template
        from wenu_cdk.stack import StackSettings, WenuStack

        app = cdk.App(context={"aws:cdk:enable-path-metadata": False})
        stacks = {}
        for stage in STAGES:
            settings = StackSettings(stage=stage, **SETTINGS[stage])
            stacks[stage] = WenuStack(app, settings.names.stack, settings=settings)
        assembly = app.synth()  # once; the assertions Template reads the synthesised stacks
        result = {}
        for stage, stack in stacks.items():
            template = Template.from_json(assembly.get_stack_by_name(stack.stack_name).template)
            result[stage] = Synthesised(template, template.to_json(), stack, assembly)
        yield result
    finally:
        sys.path.remove(str(CDK_DIR))


@pytest.fixture(scope="session")
def synth(stages: dict[str, Synthesised]) -> Synthesised:
    """The ``dev`` stage's synthesised stack: ``(template, json, stack, assembly)``."""
    return stages["dev"]


def task_definition_json(app: str) -> dict[str, Any]:
    return json.loads((ROOT / "deploy" / "ecs" / f"task-definition-{app}.json").read_text())
