"""Exit codes of the command line, and one line for every failure a user can fix.

Exit codes (the same for every command; ``wenu-stream --help`` lists them):

  0    done
  1    the command ran and failed (a shard failed and will replay, puts not acknowledged, ...)
  2    bad arguments or configuration, nothing touched: a setting, no AWS region, no AWS credentials,
       an unknown profile
  3    refused: live workers hold the leases (``checkpoints reset``)
  4    not found: the series, dead letter, stream, table or bucket named does not exist
  5    AWS unavailable: endpoint unreachable, timed out, throttled or a server error (retry later)
  6    AWS refused: access denied, or credentials rejected (invalid or expired)
  130  interrupted (Ctrl-C)
  141  the reader of stdout went away (``| head``): output stops quietly, as any Unix tool's

An unexpected exception (a bug) still prints its traceback and exits 1.
"""

from __future__ import annotations

from typing import NamedTuple

from botocore import exceptions as bx

from wenu_stream.errors import ConfigError, NotFoundError, WenuError

OK, FAILED, CONFIG, REFUSED, NOT_FOUND, UNAVAILABLE, DENIED = 0, 1, 2, 3, 4, 5, 6
INTERRUPTED, BROKEN_PIPE = 130, 141

EXIT_CODES = __doc__.split("Exit codes (", 1)[1].split("\n\n", 1)[1].split("\n\nAn unexpected", 1)[0]

_THROTTLED = {
    "Throttling", "ThrottlingException", "ThrottledException", "ProvisionedThroughputExceededException",
    "RequestLimitExceeded", "TooManyRequestsException", "SlowDown", "RequestThrottled",
    "RequestThrottledException", "LimitExceededException", "KMSInternalException",
    "TransactionInProgressException", "BandwidthLimitExceeded", "PriorRequestNotComplete",
}  # fmt: skip
_DENIED = {
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
    "InvalidClientTokenId", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
    "ExpiredTokenException", "RequestExpired", "InvalidToken", "AuthFailure", "AuthorizationError",
    "MissingAuthenticationToken", "IncompleteSignature", "KMSAccessDeniedException",
}  # fmt: skip
_NOT_FOUND = {
    "ResourceNotFoundException", "NoSuchBucket", "NoSuchKey", "NotFound", "NotFoundException",
    "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "StreamNotFound", "TableNotFoundException",
}  # fmt: skip
_LOCAL_HINT = 'for the local stack: eval "$(wenu-stream emulator env)"'


class Failure(NamedTuple):
    """What to print (one line: cause, then ``Fix:``) and the exit code."""

    code: int
    line: str


def explain(exc: BaseException) -> Failure | None:
    """The one-line explanation of a failure a user can fix, or None for a bug (let it raise)."""
    found = _leaf(exc)
    if found is None:
        return None
    if isinstance(found, ConfigError):
        return Failure(CONFIG, f"configuration error: {found}")
    if isinstance(found, NotFoundError):
        return Failure(NOT_FOUND, f"not found: {found}")
    if isinstance(found, bx.NoRegionError):
        return Failure(
            CONFIG,
            "no AWS region configured. Fix: pass --region eu-west-1, or set AWS_REGION (or AWS_DEFAULT_REGION), "
            "or a region in your AWS profile; " + _LOCAL_HINT,
        )
    if isinstance(found, bx.NoCredentialsError | bx.PartialCredentialsError):
        return Failure(
            CONFIG,
            f"no AWS credentials found ({found}). Fix: pass --profile NAME or set AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (an ECS task role needs nothing); " + _LOCAL_HINT,
        )
    if isinstance(found, bx.ProfileNotFound):
        return Failure(
            CONFIG,
            f"{found}. Fix: pass --profile with a profile of ~/.aws/config (`aws configure list-profiles`)",
        )
    if isinstance(found, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ConnectionClosedError):
        url = getattr(found, "kwargs", {}).get("endpoint_url", "the AWS endpoint")
        return Failure(
            UNAVAILABLE,
            f"cannot reach {url} ({type(found).__name__}). Fix: check the network and the endpoint "
            "(--endpoint-url, AWS_ENDPOINT_URL*); for the local stack run `wenu-stream emulator start`",
        )
    if isinstance(found, bx.ReadTimeoutError):
        return Failure(UNAVAILABLE, f"AWS did not answer in time ({found}). Fix: retry in a moment")
    if isinstance(found, bx.ClientError):
        return _client_error(found)
    if isinstance(found, OSError) and type(found).__module__.startswith("aiohttp"):
        return Failure(UNAVAILABLE, f"cannot reach the AWS endpoint ({found}). Fix: check the network")
    return None


def _client_error(exc: bx.ClientError) -> Failure:
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", "")).rstrip(".")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    op = getattr(exc, "operation_name", "the call")
    what = f"{op}: {code}{': ' + message if message else ''}"
    if code in _THROTTLED or status == 429:
        return Failure(UNAVAILABLE, f"AWS throttled {what}. Fix: retry in a moment, or raise the limit")
    if code in _DENIED or status == 403:
        return Failure(
            DENIED,
            f"AWS refused {what}. Fix: check the credentials in use (`aws sts get-caller-identity`) and that "
            "their IAM policy allows this call",
        )
    if code in _NOT_FOUND or status == 404:
        return Failure(
            NOT_FOUND,
            f"{what}. Fix: check the names (--stream, --bucket, WENU_* tables; `wenu-stream check-config`) "
            "or create them with `wenu-stream provision`",
        )
    if status >= 500:
        return Failure(UNAVAILABLE, f"AWS failed {what} (HTTP {status}). Fix: retry in a moment")
    return Failure(FAILED, f"AWS rejected {what}")


def _leaf(exc: BaseException) -> BaseException | None:
    """The first explainable exception in ``exc``, an exception group of it, or its explicit causes
    (``raise ... from``; never the context a bug was raised in)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
            continue
        if isinstance(current, ConfigError | NotFoundError | bx.BotoCoreError | bx.ClientError):
            return current
        if isinstance(current, WenuError):  # it says what happened itself (cli.main prints it)
            return None
        if isinstance(current, OSError) and type(current).__module__.startswith("aiohttp"):
            return current
        if current.__cause__ is not None:
            todo.append(current.__cause__)
    return None
