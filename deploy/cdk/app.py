#!/usr/bin/env python3
"""AWS CDK app of the whole wenu-stream stack: `cdk synth` / `cdk deploy` from this folder.

Synthesis is offline: no context lookups, an environment-agnostic stack (the account
and region are CloudFormation pseudo parameters). Settings come from cdk.json's
context (``-c stage=prod`` picks the stage, ``-c wenu:shards=8`` overrides one);
see wenu_cdk.stack.StackSettings. The stack is ``WenuStream-<stage>``.

Exit codes: 0 synthesised, 2 a bad setting (the message names it and the fix). cdk-nag's AwsSolutions
checks run on every synthesis; an unacknowledged finding is reported as an error (wenu_cdk/nag.py).
"""

from __future__ import annotations

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from wenu_cdk.naming import SettingError
from wenu_cdk.stack import StackSettings, WenuStack


def main() -> int:
    app = cdk.App()
    try:
        settings = StackSettings.from_context(app.node)
    except SettingError as exc:
        print(f"wenu-cdk: {exc}", file=sys.stderr)
        return 2
    WenuStack(app, settings.names.stack, settings=settings)
    # A finding not fixed or acknowledged (wenu_cdk/nag.py) is an error of `cdk synth` and `cdk deploy`.
    cdk.Aspects.of(app).add(AwsSolutionsChecks())
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
