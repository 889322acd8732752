"""AWS plumbing shared by the adapters: error codes of SDK exceptions and which of them mean "try again"."""

from __future__ import annotations

from typing import Any

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


def returned_item(exc: ClientError) -> dict[str, Any]:
    """The stored item a failed conditional write returned (``ReturnValuesOnConditionCheckFailure=ALL_OLD``), or {}."""
    item = exc.response.get("Item")  # present only with ALL_OLD
    return item if isinstance(item, dict) else {}
