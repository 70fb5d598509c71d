"""A validation error of stored or uploaded data names the field and never quotes the value.

pydantic's message quotes the input (``input_value=...``, the whole record for a missing field). Such an error can
reach a log line or, from a handler that raises, Lambda's own error line (``errorMessage``) and the X-Ray fault:
a contact's name, email or phone among it. Every model that reads a stored item (claims, referrals, known
customers' contacts, reference data) or an uploaded body hides its input in errors (docs/operations.md).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mci.domain.claims import Claim, CustomerContact, PartnerContact
from mci.domain.commands import AddCustomer
from mci.domain.reference import CustomerRecord, DomainRecord, Engagement, Location, ReferenceData
from mci.domain.referrals import Referral

NAME = "Quenby Marrow"
EMAIL = "quenby.marrow@fabrikam"  # no top-level domain: refused
PHONE = "+34 611 872 943 ext"
CONTACT = {"name": NAME, "email": EMAIL, "phone": PHONE}

CASES: dict[str, tuple[type[BaseModel], dict[str, Any], str]] = {
    # a known customer's last contact, read back (mci.http.reads.known_customers, mci.domain.nomination)
    "customer contact": (CustomerContact, CONTACT, "email"),
    "partner contact": (PartnerContact, {"name": NAME, "phone": PHONE}, "email"),
    "claim": (Claim, {"claim_id": "c-1", "customer_contact": CONTACT}, "customer_contact.email"),
    "referral": (Referral, {"referral_id": "r-1", "customer": {"name": NAME, "identifier_value": 7}}, "customer"),
    "engagement": (Engagement, {"engagement_id": "e-x", "payment_type": NAME}, "payment_type"),
    "location": (Location, {"location_id": "1234567", "enrolled_in_mci": NAME}, "enrolled_in_mci"),
    "customer record": (CustomerRecord, {"identifier_type": "tpid", "value": PHONE, "name": NAME}, "value"),
    "domain record": (DomainRecord, {"domain": NAME, "tenant_id": PHONE}, "domain"),
    "reference data": (ReferenceData, {"customers": [{"name": NAME, "value": PHONE}]}, "customers.0"),
    "add customer body": (AddCustomer, {"friendly_name": NAME, "customer_contact": CONTACT}, "customer_contact"),
}


@pytest.mark.parametrize(("model", "data", "field"), CASES.values(), ids=list(CASES))
def test_a_validation_error_names_the_field_and_quotes_no_value(
    model: type[BaseModel], data: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)

    for text in (str(raised.value), repr(raised.value)):
        assert field in text
        assert "Quenby" not in text
        assert "marrow" not in text.lower()
        assert "872 943" not in text
