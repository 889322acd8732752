"""Who is calling: bearer tokens (OIDC in production, signed development tokens locally) and API keys.

Every request but the probes, ``/metrics`` and the OpenAPI document carries
``Authorization: Bearer <token or key>``:

- an API key (``wsk_<id>_<secret>``): looked up by id, its SHA-256 compared,
  role and company from the key's record (``catalog.workspace``);
- a JWT: with an OIDC issuer configured (Cognito), RS256 verified against the
  issuer's JWKS (keys cached, refetched on an unknown ``kid``), issuer, expiry
  and audience (``aud``, or ``client_id`` of a Cognito access token) checked;
  without one (the embedded default), HS256 development tokens signed with a
  local secret file. There is no unauthenticated mode.

The role is the highest of ``viewer < operator < admin`` named in the roles
claim (Cognito groups); a token with a company claim, or a company-scoped key,
sees only that company (enforced in ``web.tenancy``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import jwt
import msgspec

from wenu_stream.errors import ConfigError

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
DEV_ISSUER = "wenu-dev"
DEV_AUDIENCE = "wenu-api"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """The caller: a person (token) or a machine (API key), its role, and its company when it is a customer."""

    subject: str
    role: Role
    company: str | None = None  # None: staff, every company
    via: Literal["token", "key"] = "token"

    @property
    def staff(self) -> bool:
        return self.company is None

    def at_least(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class Unauthenticated(Exception):
    """No valid credentials: the message says what was wrong (never the secret)."""


def role_of(claim: object) -> Role | None:
    """The highest role named in a roles claim (a list of groups, or one string)."""
    names = [claim] if isinstance(claim, str) else claim if isinstance(claim, list) else []
    found = [r for r in ROLES if r in names]
    return found[-1] if found else None


class DevTokens:
    """HS256 tokens signed with a local secret: the embedded default's sign-in (``wenu-stream api token``)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def from_file(cls, path: str) -> DevTokens:
        """Read the secret, creating it (32 random bytes, mode 0600) on first use."""
        file = Path(path)
        try:
            if not file.exists():
                file.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_hex(32))
            return cls(file.read_text().strip().encode())
        except OSError as exc:
            raise ConfigError(
                "api.dev_secret_file (env WENU_API_DEV_SECRET_FILE)",
                f"cannot read or create {path!r}: {exc.strerror}",
                "point it at a writable path",
            ) from None

    def mint(
        self,
        *,
        subject: str,
        role: Role,
        company: str | None,
        now_s: int,
        ttl_s: int,
        roles_claim: str,
        company_claim: str,
    ) -> str:
        claims: dict[str, Any] = {
            "sub": subject,
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "iat": now_s,
            "exp": now_s + ttl_s,
            roles_claim: [role],
        }
        if company:
            claims[company_claim] = company
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> dict[str, Any]:
        return jwt.decode(
            token,
            self._secret,
            algorithms=["HS256"],
            issuer=DEV_ISSUER,
            audience=DEV_AUDIENCE,
            options={"require": ["exp", "sub"]},
        )


class OidcTokens:
    """RS256 tokens of an OIDC issuer (Cognito), verified against its JWKS."""

    def __init__(self, issuer: str, audience: str, jwks_url: str = "") -> None:
        self._issuer = issuer.rstrip("/")
        self._audience = audience
        self._jwks = jwt.PyJWKClient(
            jwks_url or f"{self._issuer}/.well-known/jwks.json", cache_keys=True, lifespan=3600, timeout=5
        )

    def verify(self, token: str) -> dict[str, Any]:
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise Unauthenticated(f"the issuer's keys cannot be fetched: {exc}") from None
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            issuer=self._issuer,
            options={"verify_aud": False, "require": ["exp", "sub", "iss"]},
        )
        audience = claims.get("aud", claims.get("client_id"))
        audiences = audience if isinstance(audience, list) else [audience]
        if self._audience and self._audience not in audiences:
            raise jwt.InvalidAudienceError("the token is for another client")
        return claims


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal`, or raises :class:`Unauthenticated`."""

    def __init__(
        self,
        tokens: DevTokens | OidcTokens,
        *,
        verify_key: Callable[[str], Any],
        roles_claim: str = "cognito:groups",
        company_claim: str = "custom:company",
    ) -> None:
        self.tokens = tokens
        self._verify_key = verify_key
        self._roles_claim = roles_claim
        self._company_claim = company_claim

    def authenticate(self, header: str | None) -> Principal:
        scheme, _, credential = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Unauthenticated("send Authorization: Bearer <token or API key>")
        credential = credential.strip()
        if credential.startswith("wsk_"):
            key = self._verify_key(credential)
            if key is None:
                raise Unauthenticated("unknown or revoked API key")
            return Principal(
                subject=f"key:{key.id}:{key.name}", role=key.role, company=key.company or None, via="key"
            )
        try:
            claims = self.tokens.verify(credential)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        role = role_of(claims.get(self._roles_claim))
        if role is None:
            raise Unauthenticated(f"the token names no role ({', '.join(ROLES)}) in {self._roles_claim!r}")
        company = claims.get(self._company_claim)
        return Principal(subject=str(claims["sub"]), role=role, company=str(company) if company else None)
