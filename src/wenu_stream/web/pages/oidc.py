"""The backoffice's OIDC sign-in: authorization code with PKCE against the configured issuer (Cognito).

1. ``/ui/login`` keeps a fresh ``state``, ``nonce`` and PKCE verifier in the
   (encrypted) session and redirects to the issuer's authorization endpoint
   (from its discovery document) with the S256 challenge;
2. the issuer sends the browser back to ``/ui/auth/callback`` with a code;
   the state must match, the code is exchanged at the token endpoint with
   the verifier (a public client: no client secret), and the ID token is
   verified like any API token (JWKS, issuer, expiry, audience = client id)
   and must carry the nonce;
3. the session keeps the ID token; every page re-verifies it (so an expired
   token signs the user out), and roles and company come from its claims.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import urllib.parse
from typing import Any

import httpx
import msgspec


class SignInFailed(Exception):
    """The issuer's answer cannot be trusted or used; the message is safe to show."""


class Discovery(msgspec.Struct, frozen=True):
    authorization_endpoint: str
    token_endpoint: str
    end_session_endpoint: str = ""


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class OidcClient:
    """Discovery (cached for an hour), the authorization redirect and the code exchange."""

    def __init__(self, issuer: str, client_id: str, *, timeout_s: float = 10.0) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._timeout = timeout_s
        self._discovery: tuple[float, Discovery] | None = None

    def discovery(self) -> Discovery:
        if self._discovery is None or time.monotonic() - self._discovery[0] > 3600:
            url = f"{self.issuer}/.well-known/openid-configuration"
            try:
                got = httpx.get(url, timeout=self._timeout)
                got.raise_for_status()
                found = msgspec.json.decode(got.content, type=Discovery)
            except (httpx.HTTPError, msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise SignInFailed(f"the issuer's discovery document cannot be read: {exc}") from None
            self._discovery = (time.monotonic(), found)
        return self._discovery[1]

    def start(self, redirect_uri: str) -> tuple[str, dict[str, str]]:
        """The authorization URL and what the session must keep until the callback."""
        pending = {
            "state": secrets.token_urlsafe(24),
            "nonce": secrets.token_urlsafe(24),
            "verifier": secrets.token_urlsafe(48),
            "redirect_uri": redirect_uri,
        }
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
            "scope": "openid email profile", "state": pending["state"], "nonce": pending["nonce"],
            "code_challenge": challenge_of(pending["verifier"]), "code_challenge_method": "S256",
        })  # fmt: skip
        return f"{self.discovery().authorization_endpoint}?{query}", pending

    def finish(self, pending: dict[str, Any] | None, params: dict[str, str]) -> str:
        """Check the callback against the pending sign-in and exchange its code; return the ID token."""
        if "error" in params:
            raise SignInFailed(f"the issuer refused: {params['error']} {params.get('error_description', '')}")
        if not pending or not secrets.compare_digest(str(pending.get("state")), params.get("state", "")):
            raise SignInFailed("this sign-in was not started here (state mismatch): start again")
        try:
            got = httpx.post(
                self.discovery().token_endpoint,
                data={
                    "grant_type": "authorization_code",
                    "code": params.get("code", ""),
                    "redirect_uri": pending["redirect_uri"],
                    "client_id": self.client_id,
                    "code_verifier": pending["verifier"],
                },
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            raise SignInFailed(f"the issuer's token endpoint cannot be reached: {exc}") from None
        if got.status_code != 200:
            raise SignInFailed(f"the issuer refused the code ({got.status_code}): {got.text[:200]}")
        token = got.json().get("id_token")
        if not isinstance(token, str):
            raise SignInFailed("the issuer returned no ID token (is the openid scope allowed?)")
        return token
