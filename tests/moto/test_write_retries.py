"""One retry policy (issue 13, item 3): every write the handlers retry on a concurrent change is tried exactly
``CLAIM_WRITE_ATTEMPTS`` times, whichever use case it belongs to, and then answered or given up as before."""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from local.events import load_event
from mci.adapters.dynamodb_claims import DynamoDBClaimRepository
from mci.domain.claims import EmailStatus
from mci.domain.ports import ClaimChange, ConcurrentChange, NewClaims
from tests.support.consent import FIRST_REQUEST, ConsentApi, consent_api
from tests.support.reference import add_customer_body

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PENDING = EmailStatus.PENDING
ATTEMPTS = 4  # none of the counts the former loops had of their own (3, 5 and 12)


@pytest.fixture
def attempts_setting(aws_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIM_WRITE_ATTEMPTS", str(ATTEMPTS))


@pytest.fixture
def api(attempts_setting: None, seeded: DynamoDBClient, lambda_context: Any) -> ConsentApi:
    return consent_api(lambda_context)


class Contention:
    """Another writer always commits first: the writes ``contended`` picks fail as a lost race, and are counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.tries = 0

    def on_apply(self, contended: Callable[[ClaimChange], bool]) -> None:
        real = DynamoDBClaimRepository.apply

        def apply(repository: DynamoDBClaimRepository, change: ClaimChange) -> None:
            if contended(change):
                self.tries += 1
                raise ConcurrentChange("another writer committed first")
            real(repository, change)

        self.monkeypatch.setattr(DynamoDBClaimRepository, "apply", apply)

    def on_create(self) -> None:
        def create(repository: DynamoDBClaimRepository, new: NewClaims) -> None:
            self.tries += 1
            raise ConcurrentChange("another writer committed first")

        self.monkeypatch.setattr(DynamoDBClaimRepository, "create", create)


@pytest.fixture
def contention(monkeypatch: pytest.MonkeyPatch) -> Contention:
    return Contention(monkeypatch)


def every(change: ClaimChange) -> bool:
    return True


def test_adding_a_customer(api: ConsentApi, contention: Contention) -> None:
    contention.on_create()
    answer = api.partner.post("/customers", add_customer_body())
    assert answer.status == 503
    assert contention.tries == ATTEMPTS


def test_requesting_consent(api: ConsentApi, contention: Contention) -> None:
    claim_id = api.add_claim()
    contention.on_apply(every)
    assert api.request(claim_id, FIRST_REQUEST).status == 503
    assert contention.tries == ATTEMPTS


def test_recording_the_sent_consent_email(api: ConsentApi, contention: Contention) -> None:
    """The email is out; a concurrent change that keeps its link waiting is re-read and recorded on."""
    claim_id = api.add_claim()
    contention.on_apply(
        lambda c: c.before.consent_email is not None and c.before.consent_email.status is EmailStatus.PENDING
    )
    api.request(claim_id, FIRST_REQUEST)
    assert contention.tries == ATTEMPTS


def test_the_customers_decision(api: ConsentApi, contention: Contention) -> None:
    claim_id = api.add_claim()
    token = api.requested(claim_id)
    contention.on_apply(every)
    assert api.decide(token, "accept").status == 503
    assert contention.tries == ATTEMPTS


def test_taking_the_partners_notice_out_of_the_outbox(api: ConsentApi, contention: Contention) -> None:
    claim_id = api.add_claim()
    token = api.requested(claim_id)
    contention.on_apply(lambda c: bool(c.before.pending_notices) and not c.after.pending_notices)
    assert api.decide(token, "accept").status == 200  # the decision stands; the sweep sends what is pending
    assert contention.tries == ATTEMPTS


def test_cancelling_a_claim(api: ConsentApi, contention: Contention) -> None:
    claim_id = api.add_claim()
    contention.on_apply(every)
    answer = api.partner.post(f"/claims/{claim_id}/cancellation", {"reason": "customer changed plans"})
    assert answer.status == 503
    assert contention.tries == ATTEMPTS


def test_recording_a_bounce(api: ConsentApi, contention: Contention, lambda_context: Any) -> None:
    claim_id = api.add_claim()
    api.requested(claim_id)
    message_id = api.claim(claim_id)["consent_email"]["message_id"]
    event = copy.deepcopy(load_event("ses_bounce"))
    mail = event["detail"]["mail"]
    mail["messageId"] = mail["commonHeaders"]["messageId"] = message_id
    mail["tags"]["claim_id"] = [claim_id]
    contention.on_apply(every)
    handler = importlib.import_module("functions.ses_feedback.app").lambda_handler
    assert handler(event, lambda_context) == {"updated": False}
    assert contention.tries == ATTEMPTS
