"""The local issuer refuses every token the API Gateway HTTP API JWT authorizer would refuse."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from local.tokens import (
    AUDIENCE,
    InvalidToken,
    TokenIssuer,
    authorizer_claims,
    generate_key,
    has_any_scope,
    issuer_for,
)

ISSUER = issuer_for("http://127.0.0.1:3000")
NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def key() -> Any:
    return generate_key()


@pytest.fixture
def issuer(key: Any) -> TokenIssuer:
    return TokenIssuer(ISSUER, key=key, now=lambda: NOW)


def _segment(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")

    def decode(part: str) -> dict[str, Any]:
        return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))

    return decode(header), decode(payload), signature


def test_round_trip(issuer: TokenIssuer) -> None:
    token = issuer.issue("p-contoso-partners", ["incentives_user", "referral_admin"], sub="ana")
    claims = issuer.verify(token)
    assert claims["iss"] == ISSUER == "http://127.0.0.1:3000/_local"
    assert claims["aud"] == AUDIENCE == "mci-customers"
    assert claims["partner_id"] == "p-contoso-partners"
    assert claims["roles"] == ["incentives_user", "referral_admin"]
    assert claims["sub"] == "ana"
    assert claims["exp"] > NOW
    header, _, _ = _parts(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == issuer.key_id == issuer.jwks()["keys"][0]["kid"]


@pytest.mark.parametrize(
    ("roles", "scope"),
    [
        (["incentives_user"], "mci/partner"),
        (["incentives_admin", "referral_admin"], "mci/partner"),
        (["mci_operations"], "mci/operations"),
        (["incentives_user", "mci_operations"], "mci/operations mci/partner"),
        (["someone_else"], None),
        ([], None),
    ],
)
def test_the_identity_provider_issues_the_scopes_of_the_roles(
    issuer: TokenIssuer, roles: list[str], scope: str | None
) -> None:
    """Issue 12 item 7: a token carries the scopes the real identity provider issues for its roles."""
    claims = issuer.verify(issuer.issue("p-contoso-partners", roles))
    assert claims.get("scope") == scope
    assert has_any_scope(claims, ("mci/operations",)) == ("mci_operations" in roles)
    assert has_any_scope(claims, ())


def test_the_scope_check_reads_scope_or_scp_as_api_gateway_does() -> None:
    assert has_any_scope({"scope": "openid mci/partner"}, ("mci/partner",))
    assert has_any_scope({"scp": ["mci/operations"]}, ("mci/operations",))
    assert not has_any_scope({"scope": "mci/partner"}, ("mci/operations",))
    assert not has_any_scope({"scope": "mci/partner mci/operationsx"}, ("mci/operations",))
    assert not has_any_scope({"roles": "mci_operations"}, ("mci/operations",))


def test_claims_reach_the_lambda_as_the_authorizer_passes_them(issuer: TokenIssuer) -> None:
    claims = issuer.verify(issuer.issue("p-contoso-partners", ["incentives_user", "referral_admin"], sub="ana"))
    passed = authorizer_claims(claims)
    assert passed["roles"] == "[incentives_user referral_admin]"
    assert passed["partner_id"] == "p-contoso-partners"
    assert passed["aud"] == "mci-customers"
    assert passed["iss"] == ISSUER
    assert passed["sub"] == "ana"
    assert passed["exp"] == str(int(NOW) + 8 * 3600)
    assert all(isinstance(value, str) for value in passed.values())


def test_client_id_stands_for_a_missing_audience(issuer: TokenIssuer) -> None:
    token = issuer.issue("p", ["incentives_user"], extra_claims={"aud": None, "client_id": AUDIENCE})
    assert "aud" not in _parts(token)[1]
    assert issuer.verify(token)["client_id"] == AUDIENCE
    with pytest.raises(InvalidToken, match="audience"):
        issuer.verify(issuer.issue("p", ["incentives_user"], extra_claims={"aud": None}))


def test_an_audience_list_containing_ours_is_accepted(issuer: TokenIssuer) -> None:
    token = issuer.issue("p", ["incentives_user"], extra_claims={"aud": ["other", AUDIENCE]})
    assert issuer.verify(token)["partner_id"] == "p"


def test_alg_none_is_refused(issuer: TokenIssuer) -> None:
    _, payload, _ = _parts(issuer.issue("p-contoso-partners", ["mci_operations"]))
    unsigned = f"{_segment({'alg': 'none', 'typ': 'JWT', 'kid': issuer.key_id})}.{_segment(payload)}."
    with pytest.raises(InvalidToken, match="algorithm"):
        issuer.verify(unsigned)


def test_hs256_signed_with_the_public_key_is_refused(issuer: TokenIssuer) -> None:
    _, payload, _ = _parts(issuer.issue("p-contoso-partners", ["mci_operations"]))
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': issuer.key_id})}.{_segment(payload)}"
    mac = hmac.new(issuer.public_key_pem(), signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(InvalidToken, match="algorithm"):
        issuer.verify(forged)


def test_another_key_is_refused(issuer: TokenIssuer) -> None:
    stranger = TokenIssuer(ISSUER, now=lambda: NOW)
    with pytest.raises(InvalidToken):
        issuer.verify(stranger.issue("p", ["incentives_user"]))
    # Even when it claims our key id, the signature does not hold.
    header, payload, signature = _parts(stranger.issue("p", ["incentives_user"]))
    header["kid"] = issuer.key_id
    with pytest.raises(InvalidToken):
        issuer.verify(f"{_segment(header)}.{_segment(payload)}.{signature}")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"iss": "https://login.example/other"}, "issuer"),
        ({"aud": "someone-else"}, "audience"),
        ({"exp": NOW - 1}, "expired"),
        ({"exp": NOW}, "expired"),
        ({"nbf": NOW + 60}, "not valid yet"),
        ({"iat": NOW + 60}, "future"),
        ({"exp": "tomorrow"}, "exp"),
    ],
)
def test_claims_the_authorizer_refuses(issuer: TokenIssuer, extra: dict[str, Any], message: str) -> None:
    token = issuer.issue("p-contoso-partners", ["incentives_user"], extra_claims=extra)
    with pytest.raises(InvalidToken, match=message):
        issuer.verify(token)


def test_expired_through_expires_in(issuer: TokenIssuer) -> None:
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verify(issuer.issue("p", ["incentives_user"], expires_in=-60))


@pytest.mark.parametrize("claim", ["exp", "iss"])
def test_a_missing_required_claim_is_refused(issuer: TokenIssuer, claim: str) -> None:
    token = issuer.issue("p", ["incentives_user"], extra_claims={claim: None})
    assert claim not in _parts(token)[1]
    with pytest.raises(InvalidToken):
        issuer.verify(token)


def test_tampered_payload_is_refused(issuer: TokenIssuer) -> None:
    header, payload, signature = _parts(issuer.issue("p-contoso-partners", ["incentives_user"]))
    payload["roles"] = ["mci_operations"]
    with pytest.raises(InvalidToken, match=r"(?i)signature"):
        issuer.verify(f"{_segment(header)}.{_segment(payload)}.{signature}")


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x.y.z"])
def test_garbage_is_refused(issuer: TokenIssuer, garbage: str) -> None:
    with pytest.raises(InvalidToken):
        issuer.verify(garbage)


def test_jwks_publishes_the_public_key(issuer: TokenIssuer) -> None:
    (jwk,) = issuer.jwks()["keys"]
    assert jwk["kty"] == "RSA"
    assert jwk["alg"] == "RS256"
    assert jwk["use"] == "sig"
    assert "d" not in jwk  # never the private part
