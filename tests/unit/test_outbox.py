"""The email outbox: no state change whose email is lost, no email without its state change (issue 6, item 4)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mci.domain.claims import CONSENT_EMAIL_RETRY, ClaimState, Decision, EmailStatus
from mci.domain.consent import PageStatus
from mci.domain.errors import DependencyUnavailable
from mci.domain.expiry import Sweep
from tests.support.consent import FIRST_REQUEST, MemoryConsent, token_in


def sweep_of(world: MemoryConsent) -> Sweep:
    return Sweep(claims=world.claims, due=world.claims, mailer=world.mailer, clock=world.clock, outbox=world.flow)


@pytest.mark.parametrize(("decision", "kind"), [("accept", "consent_accepted"), ("decline", "consent_declined")])
def test_a_partner_notice_that_fails_stays_in_the_outbox_and_the_sweep_sends_it_once(decision: str, kind: str) -> None:
    world = MemoryConsent()
    claim = world.add_claim()
    token = world.requested(claim.claim_id)
    world.mailer.fail_next = 1

    page = world.flow.decide(token, Decision(decision))
    assert page.status is PageStatus.OPEN  # the customer's answer stands
    stored = world.stored(claim.claim_id)
    assert stored.state in {ClaimState.CONSENT_GRANTED, ClaimState.CONSENT_DECLINED}
    assert [n.kind for n in stored.pending_notices] == [kind]
    assert stored.due_at is not None
    assert stored.due_at <= world.clock.now() + timedelta(minutes=2)
    sent_before = len(world.mailer.sent)

    world.at(world.clock.now() + timedelta(minutes=2))
    first = sweep_of(world).run()
    again = sweep_of(world).run()

    notices = [m for m in world.mailer.sent[sent_before:] if m.tags.get("kind") == kind]
    assert len(notices) == 1
    assert notices[0].to == claim.partner_contact.email
    assert (first.notified, again.notified) == (1, 0)
    assert world.stored(claim.claim_id).pending_notices == []


def test_a_notice_sent_at_once_leaves_nothing_pending() -> None:
    world = MemoryConsent()
    claim = world.add_claim()
    token = world.requested(claim.claim_id)

    world.flow.decide(token, Decision.ACCEPT)
    stored = world.stored(claim.claim_id)
    assert stored.pending_notices == []
    assert [m.tags["kind"] for m in world.mailer.sent] == ["consent_request", "consent_accepted"]


def test_a_consent_email_that_never_reached_ses_is_redelivered_by_the_sweep_with_a_new_link() -> None:
    world = MemoryConsent()
    claim = world.add_claim()
    world.mailer.fail_next = 1
    with pytest.raises(DependencyUnavailable):
        world.request(claim.claim_id, **FIRST_REQUEST)
    stuck = world.stored(claim.claim_id)
    assert stuck.state is ClaimState.CONSENT_REQUESTED
    assert stuck.consent_email is not None
    assert stuck.consent_email.status is EmailStatus.PENDING
    assert world.mailer.sent == []

    world.at(world.clock.now() + CONSENT_EMAIL_RETRY)
    report = sweep_of(world).run()
    sweep_of(world).run()

    assert report.redelivered == 1
    assert len(world.mailer.sent) == 1  # exactly one email, however many sweeps
    delivered = world.stored(claim.claim_id)
    assert delivered.consent_email is not None
    assert delivered.consent_email.status is EmailStatus.SENT
    assert delivered.consent_requests.count == 1  # a redelivery is not a resend
    assert world.flow.page(token_in(world.mailer.sent[0].text)).status is PageStatus.OPEN


def test_the_sweep_does_not_redeliver_while_the_client_may_still_retry() -> None:
    world = MemoryConsent()
    claim = world.add_claim()
    world.mailer.fail_next = 1
    with pytest.raises(DependencyUnavailable):
        world.request(claim.claim_id, **FIRST_REQUEST)
    world.at(world.clock.now() + CONSENT_EMAIL_RETRY - timedelta(seconds=1))
    assert sweep_of(world).run().redelivered == 0
    assert world.mailer.sent == []
