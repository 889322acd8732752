"""The AWS CLI's global flags (``--region``, ``--profile``, ``--endpoint-url``), applied through the SDK's own settings.

There is no endpoint or region in our code: every client (boto3, aiobotocore,
and the processes a command starts) reads the SDK's environment. The flags set
it for the duration of the command:

- ``--region R``: ``AWS_DEFAULT_REGION=R``. Without the flag, ``AWS_REGION``
  is honoured as the AWS CLI v2 and the other SDKs honour it (and before
  ``AWS_DEFAULT_REGION``): botocore itself reads only ``AWS_DEFAULT_REGION``
  and the profile's ``region``;
- ``--profile P``: ``AWS_PROFILE=P``;
- ``--endpoint-url U``: ``AWS_ENDPOINT_URL=U`` for every service; a
  service-specific ``AWS_ENDPOINT_URL_<SERVICE>`` still wins (the local stack
  sets ``AWS_ENDPOINT_URL_KINESIS`` for its Kinesis emulator).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, MutableMapping


def changes(
    environ: MutableMapping[str, str], region: str | None, profile: str | None, endpoint_url: str | None
) -> dict[str, str]:
    """The SDK variables to set for these flags over ``environ``."""
    out: dict[str, str] = {}
    if region:
        out["AWS_DEFAULT_REGION"] = region
    elif environ.get("AWS_REGION") and environ.get("AWS_DEFAULT_REGION") != environ["AWS_REGION"]:
        out["AWS_DEFAULT_REGION"] = environ["AWS_REGION"]
    if profile:
        out["AWS_PROFILE"] = profile
    if endpoint_url:
        out["AWS_ENDPOINT_URL"] = endpoint_url
    return out


@contextlib.contextmanager
def applied(
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> Iterator[None]:
    """Set the SDK's variables for the flags given, and put the previous values back afterwards."""
    env = os.environ if environ is None else environ
    new = changes(env, region, profile, endpoint_url)
    saved = {key: env.get(key) for key in new}
    env.update(new)
    _forget_default_session()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        _forget_default_session()


def _forget_default_session() -> None:
    """boto3's default session keeps the profile it was created with: the next client makes a new one."""
    import boto3

    boto3.DEFAULT_SESSION = None
