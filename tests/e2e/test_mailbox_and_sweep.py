"""SPEC §6 mailbox and sweep over HTTP: a consent email lands in the local mailbox, its link opens the page,
and after time travel the sweep (the real ExpireClaimsFunction) reminds the partner, then expires the claim.

The stack is the e2e tier's shared subprocess, so this test moves its clock forward by 31 days: it uses a
partner and customer of its own (Adatum, Wide World Importers) so earlier tests' claims do not collide.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from datetime import datetime
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import StackClient

pytestmark = pytest.mark.e2e

ADATUM = "p-adatum-services"
ADATUM_LISBON = "7654322"
MIGRATE = "e-azure-migrate"
SWEEP_REPORT_KEYS = {"examined", "expired", "reminded", "skipped", "failed"}


def _mailbox(client: StackClient) -> list[dict[str, Any]]:
    answer = client.request("GET", "/_local/mailbox.json")
    assert answer.status == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    items = answer.json()["items"]
    assert isinstance(items, list)
    return items


def _emails_to(client: StackClient, address: str) -> list[dict[str, Any]]:
    return [item for item in _mailbox(client) if item["to"] == address]


def _sweep(client: StackClient) -> dict[str, Any]:
    answer = client.request("POST", "/_local/sweep")
    assert answer.status == 200, answer.text
    report = answer.json()
    assert set(report) >= SWEEP_REPORT_KEYS, report
    return dict(report)


def _advance(client: StackClient, days: float) -> None:
    answer = client.request("POST", "/_local/clock", {"advance_days": days})
    assert answer.status == 200, answer.text


def test_consent_email_link_then_sweep_expires_the_claim(local_stack: StackClient) -> None:
    token = local_stack.token(ADATUM, ["incentives_user"])
    unique = uuid.uuid4().hex[:8]
    customer_email = f"olivia.{unique}@wideworldimporters.com"
    partner_email = f"rui.{unique}@adatum-services.com"
    friendly_name = f"Wide World Importers {unique}"

    # A customer added over HTTP, then consent requested (rule 13).
    added = local_stack.request(
        "POST",
        "/customers",
        {
            "friendly_name": friendly_name,
            "location_id": ADATUM_LISBON,
            "identifier": {"type": "domain", "value": "wideworldimporters.com"},
            "engagement_ids": [MIGRATE],
            "customer_contact": {"name": "Olivia Smith", "email": customer_email, "language": "en"},
            "partner_contact": {"name": "Rui Costa", "email": partner_email},
        },
        token=token,
        headers={"Idempotency-Key": f"e2e-mailbox-{unique}"},
    )
    assert added.status == 201, added.text
    (claim,) = added.json()["claims"]
    claim_id = claim["claim_id"]

    requested = local_stack.request(
        "POST",
        f"/claims/{claim_id}/consent-requests",
        {"deal_size_usd": 25000, "disclaimer_accepted": True},
        token=token,
        headers={"Idempotency-Key": f"e2e-consent-{unique}"},
    )
    assert requested.status != 404 or requested.json() != {"message": "Not Found"}, (
        "template.yaml has no route POST /claims/{claim_id}/consent-requests"
    )
    assert requested.status == 200, requested.text
    assert requested.json()["state"] == "consent_requested"

    # The email, newest first in the mailbox, with the consent link to this stack.
    items = _mailbox(local_stack)
    assert [item["id"] for item in items] == sorted((item["id"] for item in items), reverse=True)
    assert [item["sent_at"] for item in items] == sorted((item["sent_at"] for item in items), reverse=True)
    (email,) = [item for item in items if item["to"] == customer_email]
    assert email["subject"] == "Adatum Services Lisbon asks for your consent: Azure Migrate assessment"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", email["sent_at"]), email["sent_at"]
    link_pattern = re.escape(local_stack.url) + r"/consent/[A-Za-z0-9_-]{22,}"
    links = set(re.findall(link_pattern, email["html"]))
    assert len(links) == 1, email["html"]
    (link,) = links
    assert link in email["text"], email["text"]  # derived from the HTML: moto keeps only the Html part
    assert "<" not in email["text"].replace(f"<{link}>", "").replace(f"<{partner_email}>", "")
    consent_path = link.removeprefix(local_stack.url)

    # The mailbox as a page, and the email as sent.
    page = local_stack.request("GET", "/_local/mailbox")
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert f'href="/_local/mailbox/{email["id"]}"' in page.text
    for reference in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert re.fullmatch(r"/(?!/)[\w./-]*", reference), reference  # same origin only
    shown = local_stack.request("GET", f"/_local/mailbox/{email['id']}")
    assert shown.status == 200
    assert shown.headers["content-type"].startswith("text/html")
    assert shown.text == email["html"]
    assert local_stack.request("GET", "/_local/mailbox/999999").status == 404

    # The link opens the consent page (GET changes nothing).
    opened = local_stack.request("GET", consent_path)
    assert opened.status == 200, opened.text
    assert opened.headers["cache-control"] == "no-store"
    assert opened.headers["referrer-policy"] == "no-referrer"
    assert friendly_name in opened.text
    assert local_stack.request("GET", f"/claims/{claim_id}", token=token).json()["state"] == "consent_requested"

    # 7 days before the deadline the sweep reminds the partner contact (rule 17).
    _advance(local_stack, 23.5)
    _sweep(local_stack)
    reminders = _emails_to(local_stack, partner_email)
    assert [r["subject"] for r in reminders] == [f"Reminder: consent for {friendly_name} is due by {_day(claim)}"]
    assert claim_id in reminders[0]["text"]

    # Past the deadline (31 days after creation) the sweep expires the claim.
    _advance(local_stack, 7.5)
    _sweep(local_stack)
    expired = local_stack.request("GET", f"/claims/{claim_id}", token=token)
    assert expired.status == 200, expired.text
    body = expired.json()
    assert body["state"] == "expired"
    last = body["history"][-1]
    # The stored expiry is the one a read showed before the sweep; at the deadline, not at sweep time.
    assert (last["from"], last["to"], last["actor"]) == ("consent_requested", "expired", "system")
    assert last["at"] == claim["consent_deadline"]

    # The used-up link now gets the neutral page, the same as a link that never existed.
    gone = local_stack.request("GET", consent_path)
    assert gone.status == 404
    unknown = local_stack.request("GET", f"/consent/{secrets.token_urlsafe(32)}")
    assert unknown.status == 404
    assert gone.text == unknown.text
    assert friendly_name not in gone.text

    # A rerun has nothing left to expire for this claim, and the report says so.
    again = _sweep(local_stack)
    assert again["expired"] == 0


def test_sweep_route_answers_the_report_and_refuses_get(local_stack: StackClient) -> None:
    report = _sweep(local_stack)
    assert all(isinstance(report[key], int) and report[key] >= 0 for key in SWEEP_REPORT_KEYS)
    assert local_stack.request("GET", "/_local/sweep").status == 404


def _day(claim: dict[str, Any]) -> str:
    """The consent deadline as the English emails write it: '27 December 2026'."""
    at = datetime.fromisoformat(claim["consent_deadline"].replace("Z", "+00:00"))
    return f"{at.day} {at.strftime('%B')} {at.year}"


# ---------------------------------------------------------------- the background sweep (in-process stack)


def test_background_sweep_expires_without_being_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from local.stack import LocalStack

    monkeypatch.setenv("LOCAL_SWEEP_SECONDS", "0.2")
    with LocalStack(port=0) as stack:
        client = StackClient(stack.url)
        token = client.token(ADATUM, ["incentives_user"])
        added = client.request(
            "POST",
            "/customers",
            {
                "friendly_name": "Background sweep",
                "location_id": ADATUM_LISBON,
                "identifier": {"type": "tpid", "value": "100200300"},
                "engagement_ids": [MIGRATE],
                "customer_contact": {"name": "Olivia Smith", "email": "olivia@litware.com", "language": "en"},
                "partner_contact": {"name": "Rui Costa", "email": "rui@adatum-services.com"},
            },
            token=token,
        )
        assert added.status == 201, added.text
        claim_id = added.json()["claims"][0]["claim_id"]
        _advance(client, 31)
        # A read shows the expiry at once (rule 17); the stored item changes only when the sweep writes it.
        table = boto3.client(
            "dynamodb", endpoint_url=stack.moto_url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        key = {"PK": {"S": f"CLAIM#{claim_id}"}, "SK": {"S": "CLAIM"}}
        deadline = time.monotonic() + 10
        stored = ""
        while time.monotonic() < deadline:
            stored = table.get_item(TableName=stack_table(stack), Key=key)["Item"]["state"]["S"]
            if stored == "expired":
                break
            time.sleep(0.1)
        assert stored == "expired"
        history = client.request("GET", f"/claims/{claim_id}", token=token).json()["history"]
        assert history[-1]["to"] == "expired"
    assert not any(thread.name == "local-sweep" and thread.is_alive() for thread in threading.enumerate())


@pytest.mark.parametrize(
    ("value", "seconds"), [("", 60.0), ("0", 0.0), ("2.5", 2.5), ("-1", 60.0), ("soon", 60.0), ("nan", 60.0)]
)
def test_sweep_interval_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str, seconds: float) -> None:
    from local.sweeper import interval_from_environment, start_background

    monkeypatch.setenv("LOCAL_SWEEP_SECONDS", value)
    assert interval_from_environment() == seconds
    if seconds == 0:
        assert start_background(object(), None) is None  # type: ignore[arg-type]  # 0 disables: no thread


def stack_table(stack: Any) -> str:
    """The claims table the in-process stack created (its handlers read TABLE_NAME)."""
    import os

    return os.environ.get("TABLE_NAME", "ClaimsTable")
