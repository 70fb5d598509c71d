"""Reference data and add-customer bodies for many customers: ``customer-<n>.example``, one per number."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.support.reference import add_customer_body


def numbered_tenant(n: int) -> str:
    return f"6e2d4c1a-0000-4000-9000-{n:012d}"


def numbered_domain(n: int) -> str:
    return f"customer-{n}.example"


def numbered_customers(numbers: Iterable[int], *, segment: str = "SMB", country: str = "US") -> dict[str, Any]:
    """Reference data for customers ``customer-<n>.example`` (tenant ``numbered_tenant(n)``), one per number.

    They are eligible for Azure Migrate and the Security workshop of the demo data, added by domain.
    """
    numbers = list(numbers)
    return {
        "customers": [
            {
                "identifier_type": "tenant_id",
                "value": numbered_tenant(n),
                "name": f"Customer {n}",
                "segment": segment,
                "country": country,
                "cosell_allowed": False,
                "opportunity_value_usd": None,
            }
            for n in numbers
        ],
        "domains": [{"domain": numbered_domain(n), "tenant_id": numbered_tenant(n)} for n in numbers],
    }


def numbered_key(n: int) -> str:
    """The customer key of ``customer-<n>.example`` (rule 3: its tenant)."""
    return f"tenant_id:{numbered_tenant(n)}"


def numbered_body(n: int, engagement_id: str, **overrides: Any) -> dict[str, Any]:
    """Add ``customer-<n>.example`` to one engagement (contact at the customer's own domain)."""
    body = add_customer_body(
        friendly_name=f"Customer {n} project",
        identifier={"type": "domain", "value": numbered_domain(n)},
        engagement_ids=[engagement_id],
        customer_contact={"name": f"Buyer {n}", "email": f"buyer@{numbered_domain(n)}", "language": "en"},
    )
    body.update(overrides)
    return body
