"""A small OIDC issuer on loopback for tests (Cognito is not emulated locally): discovery, JWKS, an authorization
endpoint that signs in a preset user at once, and a token endpoint that checks the PKCE verifier.

It refuses what a real issuer refuses: an unknown client or redirect URI, a reused or unknown code, a verifier
that does not match the S256 challenge. ``exchanges`` records each code exchange for the test to inspect.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class OidcIssuer:
    """Serve on 127.0.0.1 until ``close``; ``user`` is who the next sign-in is."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key"
        self.user: dict[str, Any] = {"sub": "ana", "cognito:groups": ["admin"]}
        self.codes: dict[str, dict[str, str]] = {}
        self.exchanges: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="oidc-issuer")
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                          "n": _b64(numbers.n), "e": _b64(numbers.e)}]}  # fmt: skip

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "authorization_endpoint": f"{self.url}/oauth2/authorize",
                "token_endpoint": f"{self.url}/oauth2/token", "jwks_uri": f"{self.url}/.well-known/jwks.json"}  # fmt: skip

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, {}, "unknown client or response type"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return 400, {}, "PKCE (S256) required"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {k: query.get(k, "") for k in ("redirect_uri", "code_challenge", "nonce")}
        target = (
            query["redirect_uri"]
            + "?"
            + urllib.parse.urlencode({"code": code, "state": query.get("state", "")})
        )
        return 302, {"Location": target}, ""

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        pending = self.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        ok = (pending is not None and form.get("client_id") == self.client_id
              and form.get("redirect_uri") == pending["redirect_uri"] and challenge == pending["code_challenge"])  # fmt: skip
        self.exchanges.append({"ok": ok, "verifier_sent": bool(verifier)})
        if not ok or pending is None:
            return 400, {"error": "invalid_grant"}
        now = int(time.time())
        claims = {**self.user, "iss": self.url, "aud": self.client_id, "iat": now, "exp": now + 3600,
                  "nonce": pending["nonce"], "token_use": "id"}  # fmt: skip
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        return 200, {"id_token": token, "access_token": token, "token_type": "Bearer", "expires_in": 3600}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header(
                    "Content-Type", "application/json" if not isinstance(body, str) else "text/plain"
                )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path == "/.well-known/openid-configuration":
                    self._send(200, issuer.discovery())
                elif path == "/.well-known/jwks.json":
                    self._send(200, issuer.jwks())
                elif path == "/oauth2/authorize":
                    status, headers, text = issuer.authorize(dict(urllib.parse.parse_qsl(query)))
                    self._send(status, text, headers)
                else:
                    self._send(404, "not found")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                if self.path == "/oauth2/token":
                    self._send(*issuer.token(form))
                else:
                    self._send(404, "not found")

        return Handler
