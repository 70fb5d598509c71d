"""The caller comes only from the verified JWT claims (SPEC §1), roles as the HTTP API authorizer flattens them."""

from __future__ import annotations

from typing import Any

import pytest

from local.events import http_event, jwt_claims
from mci.domain.errors import Forbidden, Unauthorized
from mci.domain.principal import CLAIM_ROLES, Principal, Role
from mci.http.principal import parse_roles, principal_from_event


@pytest.mark.parametrize(
    ("raw", "roles"),
    [
        ("[incentives_user referral_admin]", {"incentives_user", "referral_admin"}),
        ("[incentives_user]", {"incentives_user"}),
        ("[incentives_admin mci_operations]", {"incentives_admin", "mci_operations"}),
        ("incentives_user", {"incentives_user"}),
        ("mci_operations", {"mci_operations"}),
        ("[]", set()),
        ("", set()),
        (None, set()),
        (42, set()),
        ({"role": "incentives_user"}, set()),
    ],
)
def test_parse_roles(raw: Any, roles: set[str]) -> None:
    assert parse_roles(raw) == frozenset(roles)


# Issue 12 item 7: shapes the HTTP API authorizer never produces grant nothing, not even a role they name.
FORGED_ROLES: list[Any] = [
    '["mci_operations"]',
    '["incentives_user", "referral_admin"]',
    '["incentives user"]',
    "[incentives_user,referral_admin]",
    "incentives_user referral_admin",
    "  [ incentives_admin   mci_operations ]  ",
    "[[mci_operations]]",
    "[a mci_operations]x",
    "mci_operations\n",
    ["mci_operations"],
    [["mci_operations"]],
    ["a mci_operations"],
    ["a,mci_operations"],
    ["[mci_operations]"],
    ("incentives_admin",),
]


@pytest.mark.parametrize("raw", FORGED_ROLES, ids=repr)
def test_roles_in_a_shape_the_authorizer_never_produces_grant_nothing(raw: Any) -> None:
    assert parse_roles(raw) == frozenset()


def test_the_flattened_form_the_local_authorizer_produces_parses_back() -> None:
    roles = ["incentives_user", "referral_admin", "mci_operations"]
    assert parse_roles(jwt_claims("p-1", roles)["roles"]) == frozenset(roles)


def event_with(claims: dict[str, Any] | None) -> dict[str, Any]:
    return http_event("GET", "/locations", claims=claims)


def test_principal_from_verified_claims() -> None:
    event = event_with(
        {"sub": "user-7", "partner_id": "p-contoso-partners", "roles": "[incentives_user referral_admin]"}
    )
    principal = principal_from_event(event)
    assert principal == Principal(
        partner_id="p-contoso-partners",
        roles=frozenset({"incentives_user", "referral_admin"}),
        user_id="user-7",
        request_id=event["requestContext"]["requestId"],
    )
    assert principal.actor == "partner:p-contoso-partners/user:user-7"


def test_a_missing_subject_is_written_as_unknown() -> None:
    principal = principal_from_event(event_with({"partner_id": "p-1", "roles": "[incentives_user]"}))
    assert principal.user_id == "unknown"


def test_missing_roles_claim_means_no_roles() -> None:
    principal = principal_from_event(event_with({"partner_id": "p-1"}))
    assert principal.roles == frozenset()
    with pytest.raises(Forbidden):
        principal.require_any(CLAIM_ROLES, "Adding a customer")


@pytest.mark.parametrize(
    "event",
    [
        event_with(None),
        event_with({}),
        event_with({"sub": "user-1", "roles": "[incentives_user]"}),
        event_with({"partner_id": "", "roles": "[incentives_user]"}),
        {"requestContext": {"authorizer": {"jwt": {"claims": "partner_id=p-1"}}}},
        {"requestContext": {"authorizer": {"jwt": {}}}},
        {"requestContext": {"authorizer": {}}},
        {"requestContext": "not a dict"},
        {"requestContext": None},
        {},
    ],
)
def test_no_verified_claims_is_401(event: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized) as raised:
        principal_from_event(event)
    assert raised.value.status == 401
    assert raised.value.code == "unauthorized"


def test_a_partner_id_in_the_body_or_headers_is_ignored() -> None:
    event = http_event(
        "POST",
        "/customers",
        body={"partner_id": "p-northwind-consulting"},
        headers={"x-partner-id": "p-northwind-consulting"},
        claims={"partner_id": "p-contoso-partners", "roles": "[incentives_user]"},
    )
    assert principal_from_event(event).partner_id == "p-contoso-partners"


@pytest.mark.parametrize("role", ["incentives_user", "incentives_admin"])
def test_either_claim_role_is_enough(role: str) -> None:
    Principal("p-1", frozenset({role})).require_any(CLAIM_ROLES, "Adding a customer")


@pytest.mark.parametrize("roles", [set(), {"referral_admin"}, {"mci_operations"}, {"INCENTIVES_USER"}, {"incentives"}])
def test_other_roles_are_forbidden_and_the_error_says_which_are_needed(roles: set[str]) -> None:
    with pytest.raises(Forbidden) as raised:
        Principal("p-1", frozenset(roles)).require_any(CLAIM_ROLES, "Adding a customer")
    assert raised.value.status == 403
    assert raised.value.detail == "Adding a customer needs the role incentives_admin or incentives_user"


def test_operations_role_is_separate() -> None:
    operations = frozenset({Role.MCI_OPERATIONS})
    Principal("p-ops", frozenset({"mci_operations"})).require_any(operations, "Loading reference data")
    with pytest.raises(Forbidden):
        Principal("p-1", frozenset({"incentives_admin"})).require_any(operations, "Loading reference data")
