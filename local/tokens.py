"""The local identity provider: RS256 JWTs, verified as the API Gateway HTTP API JWT authorizer would.

The authorizer accepts a token only when its header names an RSA algorithm and a key of the issuer's
JWKS, the signature holds, ``iss`` is the configured issuer, ``aud`` (or, without ``aud``,
``client_id``) is one of the configured audiences, ``exp`` is in the future and ``nbf`` and ``iat``
are not. It then hands every claim to the Lambda as a string, arrays flattened as ``[a b]``.

A route with ``AuthorizationScopes`` in template.yaml also needs one of them in the token's ``scope`` claim
(space separated; or an ``scp`` list), else API Gateway answers 403 ``{"message":"Forbidden"}``. The local
identity provider issues the scopes the real one must (docs/security.md): ``mci/partner`` for a partner role,
``mci/operations`` for ``mci_operations``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "mci-customers"
ALGORITHM = "RS256"
DEFAULT_EXPIRES_IN = 8 * 3600  # a working day, so a local session does not keep asking for tokens
PARTNER_SCOPE = "mci/partner"
OPERATIONS_SCOPE = "mci/operations"
# The scope the identity provider issues for each role (docs/deployment.md, "Identity provider").
SCOPE_OF_ROLE = {
    "incentives_user": PARTNER_SCOPE,
    "incentives_admin": PARTNER_SCOPE,
    "referral_admin": PARTNER_SCOPE,
    "mci_operations": OPERATIONS_SCOPE,
}


class InvalidToken(Exception):
    """The authorizer would refuse this token (API Gateway answers 401)."""


def scopes_for(roles: Sequence[str]) -> list[str]:
    """The scopes the identity provider issues for ``roles`` (an unknown role brings none)."""
    return sorted({SCOPE_OF_ROLE[role] for role in roles if role in SCOPE_OF_ROLE})


def has_any_scope(claims: Mapping[str, Any], required: Sequence[str]) -> bool:
    """The authorizer's scope check: no scope required, or one of ``required`` in ``scope`` (or ``scp``)."""
    if not required:
        return True
    granted: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            granted.update(value.split(" "))
        elif isinstance(value, list):
            granted.update(item for item in value if isinstance(item, str))
    return bool(granted & set(required))


def generate_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def issuer_for(base_url: str) -> str:
    """The local issuer of a stack served at ``base_url``."""
    return base_url.rstrip("/") + "/_local"


class TokenIssuer:
    """Signs tokens with a key made at start, and verifies them like the HTTP API JWT authorizer."""

    def __init__(
        self,
        issuer: str,
        audience: str = AUDIENCE,
        *,
        key: rsa.RSAPrivateKey | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._key = key or generate_key()
        self._now = now
        public_der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = hashlib.sha256(public_der).hexdigest()[:16]

    # ------------------------------------------------------------ keys

    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwks(self) -> dict[str, Any]:
        """The issuer's JSON Web Key Set, as an authorizer would fetch it."""
        numbers = self._key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": ALGORITHM,
                    "kid": self.key_id,
                    "n": _b64url_uint(numbers.n),
                    "e": _b64url_uint(numbers.e),
                }
            ]
        }

    # ------------------------------------------------------------ issue

    def issue(
        self,
        partner_id: str,
        roles: Sequence[str],
        *,
        sub: str | None = None,
        expires_in: int = DEFAULT_EXPIRES_IN,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed token with the scopes of ``roles``. ``extra_claims`` come last: they override any claim
        (``roles`` included, which leaves the scopes of ``roles``), and None leaves one out (to try what the
        authorizer refuses)."""
        issued_at = int(self._now())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub or f"user-{partner_id}",
            "partner_id": partner_id,
            "roles": list(roles),
            "scope": " ".join(scopes_for(roles)),
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + expires_in,
            "jti": str(uuid.uuid4()),
        }
        if not claims["scope"]:
            del claims["scope"]
        for name, value in (extra_claims or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.key_id})

    # ------------------------------------------------------------ verify

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or InvalidToken for anything the authorizer would refuse."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken(f"malformed token: {error}") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        if header.get("kid") != self.key_id:
            raise InvalidToken("unknown signing key (kid)")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=[ALGORITHM],
                options={
                    "require": ["exp", "iss"],
                    "verify_signature": True,
                    "verify_aud": False,  # aud or client_id, checked below as the authorizer does
                    "verify_iss": False,  # checked below, to say which one was expected
                    "verify_exp": False,  # checked below against the injected clock
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from None
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        if claims.get("iss") != self.issuer:
            raise InvalidToken(f"issuer must be {self.issuer}")
        audiences = claims.get("aud") if "aud" in claims else claims.get("client_id")
        accepted = audiences if isinstance(audiences, list) else [audiences]
        if self.audience not in accepted:
            raise InvalidToken(f"audience must be {self.audience}")
        now = self._now()
        exp = _numeric(claims, "exp")
        if exp is None or exp <= now:
            raise InvalidToken("the token has expired")
        nbf = _numeric(claims, "nbf")
        if nbf is not None and nbf > now:
            raise InvalidToken("the token is not valid yet (nbf)")
        iat = _numeric(claims, "iat")
        if iat is not None and iat > now:
            raise InvalidToken("the token was issued in the future (iat)")


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"{name} must be a number")
    return float(value)


def _claim_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_claim_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def authorizer_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as the HTTP API JWT authorizer hands them to Lambda: all strings, arrays as ``[a b]``."""
    return {name: _claim_text(value) for name, value in claims.items()}
