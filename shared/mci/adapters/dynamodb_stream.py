"""The table's stream records read as domain events (rule 20): the one reader of the items' images in a stream.

Only the stream publisher imports this module, so no other function pays for the events module at cold start.
"""

from __future__ import annotations

from typing import Any

from mci.adapters.dynamodb_claims import claim_from_item, claim_head_from_item, referral_from_item
from mci.adapters.dynamodb_items import Item
from mci.domain.events import DomainEvent, claim_event, claim_event_name, referral_event
from mci.domain.referrals import Referral

# What a record's data can raise when it is not what the code reads (pydantic's errors are ValueErrors).
UNREADABLE = (ValueError, LookupError, TypeError, AttributeError)


def event_of(record: dict[str, Any]) -> DomainEvent | None:
    """The event a stream record carries, or None: most changes (email status, reminders, the outbox) are none.

    Raises one of ``UNREADABLE`` when the record is not an image this code wrote.
    """
    change = record.get("dynamodb") or {}
    old, new = change.get("OldImage"), change.get("NewImage")
    kind = ((new or old or {}).get("type") or {}).get("S")
    if kind == "claim":
        if not new:
            return None
        # Decided on two attributes; only the new image of an event is validated as a whole claim.
        before = claim_head_from_item(old) if old else None
        if claim_event_name(before, claim_head_from_item(new)) is None:
            return None
        return claim_event(before, claim_from_item(new))
    if kind == "referral":
        return referral_event(_referral(old), _referral(new))
    return None


def _referral(image: Item | None) -> Referral | None:
    return referral_from_item(image) if image else None
