"""S3 PutObject without botocore's request pipeline: SigV4 by hand, aiohttp, one pooled HTTP session.

Dead letters are one small object each. Through an aiobotocore client a PutObject
costs about 3 ms of CPU (endpoint rules, event hooks, user agent, signer, checksum
and response parsing); here it costs the HTTP exchange and one HMAC. What the SDK
resolves is still the SDK's: ``open`` asks the client for a presigned URL once and
takes the bucket's base URL (path or virtual-host style, the endpoint from
``AWS_ENDPOINT_URL*``) and the signing region from it; credentials come from the
same session on every call, so refreshed credentials are picked up.

The signature is AWS Signature Version 4 with a signed payload hash (the S3 flavour:
the path is not encoded twice); a unit test checks it against botocore's own
``S3SigV4Auth`` byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
from yarl import URL

from wenu_stream.errors import WenuError

_ALGORITHM = "AWS4-HMAC-SHA256"
_PROBE = "wenu-probe"


class S3PutError(WenuError):
    """S3 answered a PutObject with an error status (the caller retries)."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        super().__init__(f"S3 PutObject failed with HTTP {status}: {body[:300].decode('utf-8', 'replace')}")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class SigV4S3:
    """Signs S3 requests for one region; the derived signing key is cached per day and secret."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._key: tuple[str, str, bytes] | None = None  # (date, secret, derived key)

    def _signing_key(self, date: str, secret: str) -> bytes:
        cached = self._key
        if cached is not None and cached[0] == date and cached[1] == secret:
            return cached[2]
        key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), date), self.region), "s3"), "aws4_request")
        self._key = (date, secret, key)
        return key

    def headers(
        self,
        method: str,
        host: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        *,
        access_key: str,
        secret_key: str,
        token: str | None,
        now: dt.datetime,
    ) -> dict[str, str]:
        """Return ``headers`` plus host, x-amz-date, x-amz-content-sha256, the token and Authorization.

        ``path`` is the request path exactly as sent (already percent-encoded); the query is empty.
        """
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        date = amz_date[:8]
        payload_hash = hashlib.sha256(body).hexdigest()
        signed = {k.lower(): v.strip() for k, v in headers.items()}
        signed.update({"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date})
        if token:
            signed["x-amz-security-token"] = token
        names = sorted(signed)
        signed_headers = ";".join(names)
        canonical = "\n".join(
            [method, path, "", *(f"{n}:{signed[n]}" for n in names), "", signed_headers, payload_hash]
        )
        scope = f"{date}/{self.region}/s3/aws4_request"
        to_sign = f"{_ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(
            self._signing_key(date, secret_key), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        out = {**headers, "Host": host, "X-Amz-Date": amz_date, "X-Amz-Content-SHA256": payload_hash}
        if token:
            out["X-Amz-Security-Token"] = token
        out["Authorization"] = (
            f"{_ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
        )
        return out


class FastS3Put:
    """PutObject into one bucket. One instance serves every shard of a process; ``close`` when done."""

    def __init__(self, *, base_url: str, region: str, credentials: Any, http: aiohttp.ClientSession) -> None:
        parts = urlsplit(base_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._host = parts.netloc
        self._base_path = parts.path if parts.path.endswith("/") else parts.path + "/"
        self._credentials = credentials
        self._signer = SigV4S3(region)
        self._http = http

    @classmethod
    async def open(cls, session: Any, client: Any, bucket: str) -> FastS3Put:
        """Build from an aiobotocore session and its S3 client: the SDK resolves the bucket's URL and region."""
        credentials = await session.get_credentials()
        if credentials is None:
            raise WenuError("no AWS credentials found by the SDK")
        url = await client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": _PROBE})
        parts = urlsplit(url)
        if not parts.path.endswith("/" + _PROBE):
            raise WenuError(f"unexpected presigned S3 URL shape: {parts.scheme}://{parts.netloc}{parts.path}")
        credential = parse_qs(parts.query).get("X-Amz-Credential", [""])[0].split("/")
        region = credential[2] if len(credential) == 5 else client.meta.region_name
        base = f"{parts.scheme}://{parts.netloc}{parts.path[: -len(_PROBE)]}"
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=60, connect=10),
        )
        return cls(base_url=base, region=region, credentials=credentials, http=http)

    async def close(self) -> None:
        await self._http.close()

    async def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        """Store ``body`` at ``key``; returns once S3 confirmed it (HTTP 200), raises otherwise."""
        path = self._base_path + quote(key, safe="/~")
        frozen = await self._credentials.get_frozen_credentials()
        headers = self._signer.headers(
            "PUT",
            self._host,
            path,
            {"Content-Type": content_type},
            body,
            access_key=frozen.access_key,
            secret_key=frozen.secret_key,
            token=frozen.token,
            now=dt.datetime.now(dt.UTC),
        )
        async with self._http.put(URL(self._origin + path, encoded=True), data=body, headers=headers) as resp:
            payload = await resp.read()
            if resp.status != 200:
                raise S3PutError(resp.status, payload)
