"""Who is calling: the partner organisation and roles from the verified token, never from the request."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mci.domain.errors import Forbidden


class Role(StrEnum):
    INCENTIVES_USER = "incentives_user"
    INCENTIVES_ADMIN = "incentives_admin"
    REFERRAL_ADMIN = "referral_admin"
    MCI_OPERATIONS = "mci_operations"


CLAIM_ROLES = frozenset({Role.INCENTIVES_USER, Role.INCENTIVES_ADMIN})
PARTNER_ROLES = frozenset({Role.INCENTIVES_USER, Role.INCENTIVES_ADMIN, Role.REFERRAL_ADMIN})
# The partner_id claim of programme operations' tokens: Microsoft's own organisation, never a partner's
# (settings.operations_partner_id, the OperationsPartnerId parameter of template.yaml).
OPERATIONS_PARTNER_ID = "mci-operations"


@dataclass(frozen=True, slots=True)
class Principal:
    partner_id: str
    roles: frozenset[str]
    user_id: str = "unknown"
    request_id: str | None = None

    @property
    def actor(self) -> str:
        """How the principal is written in a claim's history."""
        return f"partner:{self.partner_id}/user:{self.user_id}"

    def require_any(self, allowed: frozenset[Role], action: str) -> None:
        """Rule 1: acting needs one of ``allowed``; otherwise 403."""
        if not self.roles & {role.value for role in allowed}:
            names = " or ".join(sorted(role.value for role in allowed))
            raise Forbidden(f"{action} needs the role {names}")

    def require_operations(self, operations_partner_id: str, action: str) -> None:
        """Rule 30: operations is the programme's own team, never a partner. Acting needs ``mci_operations``
        from the operations organisation, and no partner role beside it; otherwise 403."""
        self.require_any(frozenset({Role.MCI_OPERATIONS}), action)
        if self.roles & {role.value for role in PARTNER_ROLES}:
            raise Forbidden(f"{action} is for programme operations only: the token also carries a partner role")
        if self.partner_id != operations_partner_id:
            raise Forbidden(f"{action} is for programme operations only: the token names a partner organisation")
