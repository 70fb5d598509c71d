"""Reads of reference data as a partner sees it: open engagements and its own locations."""

from __future__ import annotations

from datetime import date

from mci.domain.ports import ReferenceRepository
from mci.domain.principal import CLAIM_ROLES, Principal, Role
from mci.domain.reference import Engagement, Location

BROWSE_ROLES = CLAIM_ROLES | {Role.REFERRAL_ADMIN}


def partner_locations(reference: ReferenceRepository, principal: Principal) -> list[Location]:
    principal.require_any(BROWSE_ROLES, "Listing locations")
    return sorted(reference.list_locations(principal.partner_id), key=lambda loc: loc.location_id)


def open_engagements(reference: ReferenceRepository, principal: Principal, today: date) -> list[Engagement]:
    """Engagements open today for which at least one enrolled location of the partner is eligible."""
    principal.require_any(BROWSE_ROLES, "Listing engagements")
    eligible_ids = {
        engagement_id
        for location in reference.list_locations(principal.partner_id)
        if location.enrolled_in_mci
        for engagement_id in location.eligible_engagements
    }
    return sorted(
        (e for e in reference.list_engagements() if e.engagement_id in eligible_ids and e.is_open(today)),
        key=lambda e: e.name,
    )
