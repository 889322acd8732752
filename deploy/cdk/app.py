#!/usr/bin/env python3
"""AWS CDK app of the whole wenu-stream stack: `cdk synth` / `cdk deploy` from this folder.

Synthesis is offline: no context lookups, an environment-agnostic stack (the account
and region are CloudFormation pseudo parameters). Settings come from cdk.json's
context (``-c wenu:shards=8`` overrides one); see wenu_cdk.stack.StackSettings.
"""

from __future__ import annotations

import aws_cdk as cdk
from wenu_cdk.stack import StackSettings, WenuStack


def main() -> None:
    app = cdk.App()
    WenuStack(app, "WenuStream", settings=StackSettings.from_context(app.node))
    app.synth()


if __name__ == "__main__":
    main()
