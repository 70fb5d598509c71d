"""A Lookup read through the separate repository ports, for stores that cannot read across them at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from mci.domain.ports import Found, KnownCustomer, LimitSnapshot, Lookup, ReferenceRepository

if TYPE_CHECKING:
    from mci.domain.referrals import Referral

T = TypeVar("T")


@dataclass(frozen=True)
class SeparateLookups:
    """One port call per kind of item: what the use cases fall back to without a batching store.

    The in-memory fakes are read this way (so a fake that wraps ``read_limits`` still sees every read
    of the limits); the DynamoDB adapter reads a whole Lookup in one BatchGetItem instead.
    """

    reference: ReferenceRepository
    read_limits: Callable[[str, str, Sequence[str]], dict[str, LimitSnapshot]] | None = None
    get_known_customer: Callable[[str, str], KnownCustomer | None] | None = None
    get_referral: Callable[[str], Referral | None] | None = None

    def look_up(self, lookup: Lookup) -> Found:
        reference = self.reference
        limits: dict[str, dict[str, LimitSnapshot]] = {}
        for keys in lookup.limits:
            read = _given(self.read_limits, "limits")(keys.partner_id, keys.customer_key, keys.engagement_ids)
            limits.setdefault(keys.customer_key, {}).update(read)
        known = None
        if lookup.known_customer is not None:
            known = _given(self.get_known_customer, "known customers")(*lookup.known_customer)
        referral = _given(self.get_referral, "referrals")(lookup.referral_id) if lookup.referral_id else None
        return Found(
            location=reference.get_location(lookup.location_id) if lookup.location_id is not None else None,
            engagements=reference.get_engagements(lookup.engagement_ids) if lookup.engagement_ids else {},
            tenants=reference.tenants_of_domains(lookup.domains) if lookup.domains else {},
            customers=reference.get_customers(lookup.customers) if lookup.customers else {},
            limits=limits,
            known_customer=known,
            referral=referral,
        )


def _given(read: T | None, what: str) -> T:
    if read is None:
        raise TypeError(f"this lookup reads {what}, but no port for them was given")
    return read
