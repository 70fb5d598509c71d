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
