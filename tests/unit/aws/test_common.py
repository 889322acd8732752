"""Error codes of SDK exceptions, read in one place."""

from __future__ import annotations

from botocore.exceptions import ClientError, EndpointConnectionError

from wenu_stream.aws.common import error_code, error_message, is_conditional_failure


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
