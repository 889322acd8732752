"""Error codes of SDK exceptions, read in one place, and the class of a sink's failure they give."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from wenu_stream.aws.common import classify, error_code, error_message, is_conditional_failure
from wenu_stream.aws.signed import TransportError
from wenu_stream.errors import SinkError, SinkRejected
from wenu_stream.ingest.failures import Failure


def client_error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "PutItem")


def test_the_code_and_message_of_a_service_error() -> None:
    exc = client_error("ConditionalCheckFailedException", "The conditional request failed")
    assert error_code(exc) == "ConditionalCheckFailedException"
    assert error_message(exc) == "The conditional request failed"
    assert is_conditional_failure(exc)
    assert not is_conditional_failure(client_error("ThrottlingException"))


def test_errors_without_a_service_answer_have_no_code() -> None:
    for exc in (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), OSError("reset"), ValueError()):
        assert error_code(exc) == "" and error_message(exc) == ""
        assert not is_conditional_failure(exc)
    assert error_code(ClientError({}, "GetItem")) == ""


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (client_error("ValidationException"), Failure.REJECTED),  # a number out of range, an item over 400 KB
        (client_error("ItemCollectionSizeLimitExceededException"), Failure.REJECTED),
        (client_error("InvalidParameter"), Failure.REJECTED),  # SNS: a message over 256 KB
        (client_error("EntityTooLarge"), Failure.REJECTED),
        (SinkRejected("stats", "refused"), Failure.REJECTED),
        (client_error("ProvisionedThroughputExceededException"), Failure.TRANSIENT),
        (client_error("ThrottlingException"), Failure.TRANSIENT),
        (client_error("InternalServerError"), Failure.TRANSIENT),
        (
            client_error("AccessDeniedException"),
            Failure.TRANSIENT,
        ),  # the setup, not the data: retried until fixed
        (client_error("ResourceNotFoundException"), Failure.TRANSIENT),
        (client_error("NoSuchBucket"), Failure.TRANSIENT),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), Failure.TRANSIENT),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), Failure.TRANSIENT),
        (TransportError("GetRecords: reset"), Failure.TRANSIENT),
        (TimeoutError(), Failure.TRANSIENT),
        (ConnectionResetError(), Failure.TRANSIENT),
        (SinkError("a batch could not be made durable"), Failure.TRANSIENT),
        (
            client_error("ConditionalCheckFailedException"),
            Failure.BUG,
        ),  # our fences make it a value, never raised
        (KeyError("x"), Failure.BUG),
        (TypeError("x"), Failure.BUG),
    ],
)
def test_classify(exc: BaseException, failure: Failure) -> None:
    assert classify(exc) is failure
