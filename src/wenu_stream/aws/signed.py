"""Signed AWS JSON-protocol calls without botocore's request pipeline: SigV4 by hand, one pooled aiohttp session.

The hot calls of the workers (Kinesis GetRecords, DynamoDB PutItem/UpdateItem/
GetItem/BatchGetItem) cost about 2.8 ms of CPU each through an aiobotocore client
(parameter validation, serialisation, endpoint rules, event hooks, user agent,
signer, response parsing); here a call costs one SHA-256 of the body, one HMAC
chain (the signing key is cached per day) and the HTTP exchange. What the SDK
resolves stays the SDK's: :meth:`JsonTransport.open` takes the endpoint
(``AWS_ENDPOINT_URL_<SERVICE>`` / ``AWS_ENDPOINT_URL``) and region from an SDK
client, and credentials from its session on every call, so refreshed
credentials are picked up.

The signature is AWS Signature Version 4 as botocore's ``SigV4Auth`` computes it
for JSON services (``tests/unit/aws/test_signed.py`` checks it byte for byte).
The callers map error bodies (``{"__type": ..., "message": ...}``) themselves.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp

from wenu_stream.errors import WenuError

if TYPE_CHECKING:
    from aiobotocore.client import AioBaseClient
    from aiobotocore.credentials import AioCredentials
    from aiobotocore.session import AioSession

ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class SigV4:
    """Signs POST requests to ``/`` of one service in one region (JSON protocols); key cached per day and secret."""

    def __init__(self, service: str, region: str) -> None:
        self.service = service
        self.region = region
        self._key: tuple[str, str, bytes] | None = None  # (date, secret, derived key)

    def _signing_key(self, date: str, secret: str) -> bytes:
        cached = self._key
        if cached is not None and cached[0] == date and cached[1] == secret:
            return cached[2]
        key = _hmac(
            _hmac(_hmac(_hmac(("AWS4" + secret).encode(), date), self.region), self.service), "aws4_request"
        )
        self._key = (date, secret, key)
        return key

    def headers(
        self,
        host: str,
        headers: dict[str, str],
        body: bytes,
        *,
        access_key: str,
        secret_key: str,
        token: str | None,
        now: dt.datetime,
    ) -> dict[str, str]:
        """Return ``headers`` plus X-Amz-Date, the session token (if any) and Authorization for ``POST /``."""
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        date = amz_date[:8]
        signed = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
        signed["host"] = host
        signed["x-amz-date"] = amz_date
        if token:
            signed["x-amz-security-token"] = token
        names = sorted(signed)
        signed_headers = ";".join(names)
        payload_hash = hashlib.sha256(body).hexdigest()
        canonical = "\n".join(
            ["POST", "/", "", *(f"{n}:{signed[n]}" for n in names), "", signed_headers, payload_hash]
        )
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(
            self._signing_key(date, secret_key), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        out = {**headers, "X-Amz-Date": amz_date}
        if token:
            out["X-Amz-Security-Token"] = token
        out["Authorization"] = (
            f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
        )
        return out


def canonical_host(endpoint: str) -> str:
    """The Host header botocore signs: the endpoint's netloc without a default port."""
    parts = urlsplit(endpoint)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


class TransportError(WenuError):
    """The request never got an answer (connection refused or reset, timeout): retry it."""


class JsonTransport:
    """POSTs signed JSON-protocol requests to one service endpoint. One instance per process and service."""

    def __init__(
        self,
        *,
        endpoint: str,
        region: str,
        service: str,
        target_prefix: str,
        content_type: str,
        credentials: AioCredentials,
        http: aiohttp.ClientSession,
    ) -> None:
        self.endpoint = endpoint.rstrip("/") + "/"
        self.region = region
        self._host = canonical_host(self.endpoint)
        self._signer = SigV4(service, region)
        self._target = target_prefix
        self._content_type = content_type
        self._credentials = credentials
        self._http = http

    @classmethod
    async def open(
        cls,
        session: AioSession,
        client: AioBaseClient,
        *,
        service: str,
        target_prefix: str,
        content_type: str,
        timeout_s: float | None = None,
        connect_s: float,
        read_s: float,
    ) -> JsonTransport:
        """Build from an aiobotocore session and one of its clients (endpoint and region resolved by the SDK).

        Deadlines as the SDK clients' (``aws.common.client_config``): ``connect_s`` to connect, ``read_s``
        between two reads, and ``timeout_s`` (if given) for the whole exchange; the callers' ``aws.deadlines``
        bound a call with its retries.
        """
        credentials = await session.get_credentials()
        if credentials is None:
            raise WenuError("no AWS credentials found by the SDK")
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_s, sock_read=read_s),
            skip_auto_headers=("User-Agent",),
        )
        return cls(
            endpoint=client.meta.endpoint_url,
            region=client.meta.region_name,
            service=service,
            target_prefix=target_prefix,
            content_type=content_type,
            credentials=credentials,
            http=http,
        )

    async def close(self) -> None:
        await self._http.close()

    async def post(self, operation: str, body: bytes) -> tuple[int, bytes, str | None]:
        """One call: (HTTP status, response body, ``x-amzn-ErrorType`` header).

        Raises:
            TransportError: no answer (connection trouble or timeout).
        """
        frozen = await self._credentials.get_frozen_credentials()
        if frozen.access_key is None or frozen.secret_key is None:  # botocore types them optional
            raise WenuError("the SDK's credentials have no access key or secret key")
        headers = self._signer.headers(
            self._host,
            {"Content-Type": self._content_type, "X-Amz-Target": self._target + operation},
            body,
            access_key=frozen.access_key,
            secret_key=frozen.secret_key,
            token=frozen.token,
            now=dt.datetime.now(dt.UTC),
        )
        try:
            async with self._http.post(self.endpoint, data=body, headers=headers) as resp:
                return resp.status, await resp.read(), resp.headers.get("x-amzn-ErrorType")
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise TransportError(f"{operation} to {self.endpoint}: {exc!r}") from exc
