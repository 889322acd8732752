"""AWS plumbing shared by the adapters: error codes of SDK exceptions and which of them mean "try again"."""

from __future__ import annotations

from botocore.exceptions import ClientError


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# DynamoDB answers that mean "slow down", not "this request is wrong".
THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
    }
)
