"""The claim routes, the operations routes and the public consent page through the real handlers on moto.

``LifecycleApi`` takes claims through the real flows (add, consent, submit, review); it reaches
``consent_granted`` only by a real consent acceptance (the link out of the email, then the page's POST),
so a granted claim also makes a known customer.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from mci.domain.principal import OPERATIONS_PARTNER_ID
from tests.support.api import Answer, Caller
from tests.support.consent import FIRST_REQUEST, ConsentApi, sent_messages, token_in, verify_sender
from tests.support.reference import CONTOSO, add_customer_body

OPERATIONS_PARTNER = OPERATIONS_PARTNER_ID
OPERATIONS_ROLES = ["mci_operations"]


@dataclass
class LifecycleApi(ConsentApi):
    """The partner's claim routes, the operations routes and the public consent page, through the real handlers."""

    ops: Caller

    # --- creating and moving claims through the real flows ---------------------------------------

    def add(self, body: dict[str, Any] | None = None, caller: Caller | None = None) -> Answer:
        return self.post("/customers", body or add_customer_body(), as_=caller)

    def requested_by(self, claim_id: str, caller: Caller | None = None) -> str:
        """Request consent as ``caller`` (first request) and return the token of the email just sent."""
        before = len(sent_messages())
        answer = self.request(claim_id, FIRST_REQUEST, caller=caller)
        assert answer.status == 200, answer.body
        messages = sent_messages()
        assert len(messages) == before + 1
        return token_in(str(messages[-1].body))

    def granted(self, body: dict[str, Any] | None = None, caller: Caller | None = None) -> str:
        """A new claim whose customer accepted consent through the link in the email."""
        claim_id = self.add_claim(body, caller)
        self.accept(claim_id, caller)
        return claim_id

    def accept(self, claim_id: str, caller: Caller | None = None) -> None:
        token = self.requested_by(claim_id, caller)
        answer = self.decide(token, "accept")
        assert answer.status == 200, answer.body
        assert self.claim_as(claim_id, caller)["state"] == "consent_granted"

    def declined(self, body: dict[str, Any] | None = None, caller: Caller | None = None) -> str:
        claim_id = self.add_claim(body, caller)
        token = self.requested_by(claim_id, caller)
        assert self.decide(token, "decline").status == 200
        return claim_id

    def submitted(self, body: dict[str, Any] | None = None, caller: Caller | None = None) -> str:
        claim_id = self.granted(body, caller)
        answer = self.submit(claim_id, caller=caller)
        assert answer.status == 200, answer.body
        return claim_id

    def reviewed(self, decision: str, body: dict[str, Any] | None = None, caller: Caller | None = None) -> str:
        claim_id = self.submitted(body, caller)
        answer = self.review(claim_id, decision, "checked by operations")
        assert answer.status == 200, answer.body
        return claim_id

    def claim_as(self, claim_id: str, caller: Caller | None = None) -> dict[str, Any]:
        answer = self.get_claim(claim_id, caller=caller)
        assert answer.status == 200, answer.body
        body: dict[str, Any] = answer.body
        return body

    # --- the lifecycle routes --------------------------------------------------------------------

    def submit(
        self, claim_id: str, body: dict[str, Any] | None = None, *, caller: Caller | None = None, key: str | None = None
    ) -> Answer:
        return self.post(f"/claims/{claim_id}/submission", {} if body is None else body, as_=caller, key=key)

    def cancel(
        self,
        claim_id: str,
        reason: str | None = "customer changed plans",
        *,
        body: dict[str, Any] | None = None,
        caller: Caller | None = None,
        key: str | None = None,
    ) -> Answer:
        sent = body if body is not None else {"reason": reason}
        return self.post(f"/claims/{claim_id}/cancellation", sent, as_=caller, key=key)

    def review(
        self,
        claim_id: str,
        decision: str = "complete",
        reason: str | None = "checked by operations",
        *,
        body: dict[str, Any] | None = None,
        caller: Caller | None = None,
    ) -> Answer:
        sent = body if body is not None else {"decision": decision, "reason": reason}
        return self.post(f"/ops/claims/{claim_id}/review", sent, as_=caller or self.ops)

    # --- claim customer, the Customers page, reference data, the sweep ----------------------------

    def claim_customer(
        self, customer_id: str, body: dict[str, Any], *, caller: Caller | None = None, key: str | None = None
    ) -> Answer:
        return self.post(f"/known-customers/{customer_id}/claims", body, as_=caller, key=key)

    def customers(
        self,
        engagement_id: str,
        tab: str | None = None,
        *,
        cursor: str | None = None,
        limit: int | str | None = None,
        caller: Caller | None = None,
    ) -> Answer:
        query = {
            name: str(value)
            for name, value in (("tab", tab), ("cursor", cursor), ("limit", limit))
            if value is not None
        }
        return self.get(f"/engagements/{engagement_id}/customers", as_=caller, query=query or None)

    def attention(
        self, *, cursor: str | None = None, limit: int | str | None = None, caller: Caller | None = None
    ) -> Answer:
        query = {name: str(value) for name, value in (("cursor", cursor), ("limit", limit)) if value is not None}
        return self.get("/attention-items", as_=caller, query=query or None)

    def load_reference(self, data: dict[str, Any]) -> Answer:
        answer = self.post("/ops/reference-data", data, as_=self.ops)
        assert answer.status == 200, answer.body
        return answer

    def sweep(self) -> dict[str, int]:
        """One run of the scheduled sweep through its real handler."""
        module = importlib.import_module("functions.expire_claims.app")
        report: dict[str, int] = module.lambda_handler({}, self.partner.context)
        return report


def lifecycle_api(context: Any, partner_id: str = CONTOSO) -> LifecycleApi:
    """The API as ``partner_id``, as operations and as the public, with the SES sender verified (moto active)."""
    verify_sender()
    return LifecycleApi(
        partner=Caller(partner_id, ["incentives_user"], context),
        public=Caller(None, [], context),
        ops=Caller(OPERATIONS_PARTNER, OPERATIONS_ROLES, context),
    )
