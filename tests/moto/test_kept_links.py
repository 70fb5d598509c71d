"""Links kept live across a redelivery (docs/data-model.md), on moto: they end with the claim's consent (a
cancellation, the sweep's expiry), and only the newest ``MAX_KEPT_LINKS`` are kept, the oldest's token item deleted.

Each kept link here comes from a consent email whose every SES attempt lost its answer (SES may have sent it:
``SendOutcomeUnknown``), followed by the partner's retry, which redelivers with a new link and keeps the earlier."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.retries.standard import ExponentialBackoff

from local.moto_patches import lean_moto
from mci.adapters.aws import sesv2
from mci.domain.claims import MAX_KEPT_LINKS, Claim
from tests.support.consent import FIRST_REQUEST, sent_messages, token_in
from tests.support.lifecycle_api import LifecycleApi, lifecycle_api
from tests.support.store_snapshots import TableSnapshot, assert_all_counters_match, stored_claims

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from mci.domain.clock import FixedClock

TABLE = "ClaimsTable"


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    lean_moto(monkeypatch)
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda *_: 0)  # botocore's retries, without the wait


@pytest.fixture
def api(seeded: DynamoDBClient, lambda_context: Any) -> Iterator[LifecycleApi]:
    yield lifecycle_api(lambda_context)
    assert_all_counters_match(TableSnapshot(seeded))


class AnswersLost:
    """While installed, every SendEmail attempt of the API's SES client times out on the read."""

    def __init__(self) -> None:
        self.events = sesv2().meta.events

    def __enter__(self) -> None:
        self.events.register_first("before-send.sesv2.SendEmail", self._lost, unique_id="kept-links-lost")

    def __exit__(self, *_: object) -> None:
        self.events.unregister("before-send.sesv2.SendEmail", unique_id="kept-links-lost")

    @staticmethod
    def _lost(request: Any, **_: Any) -> None:
        raise ReadTimeoutError(endpoint_url=request.url)


def token_hashes(client: DynamoDBClient) -> set[str]:
    """The consent links the table holds (their token items), by hash."""
    pages = client.get_paginator("scan").paginate(
        TableName=TABLE,
        FilterExpression="begins_with(PK, :token)",
        ExpressionAttributeValues={":token": {"S": "TOKEN#"}},
        ConsistentRead=True,
    )
    return {item["PK"]["S"].removeprefix("TOKEN#") for page in pages for item in page["Items"]}


def with_kept_links(api: LifecycleApi, client: DynamoDBClient, lost: int) -> tuple[str, list[str]]:
    """A claim whose first ``lost`` consent emails lost their answer, then one went out: its id, and the hash of
    each email's link in order (the last one current)."""
    claim_id = api.add_claim()
    hashes = []
    for _ in range(lost):
        with AnswersLost():
            assert api.request(claim_id, FIRST_REQUEST).status == 503
        hashes.append(stored(client, claim_id).consent_token_hash or "")
    assert api.request(claim_id, FIRST_REQUEST).status == 200
    hashes.append(stored(client, claim_id).consent_token_hash or "")
    assert len(set(hashes)) == lost + 1
    return claim_id, hashes


def stored(client: DynamoDBClient, claim_id: str) -> Claim:
    return stored_claims(client, [claim_id])[claim_id]


def test_kept_links_end_when_the_partner_cancels(api: LifecycleApi, seeded: DynamoDBClient) -> None:
    claim_id, hashes = with_kept_links(api, seeded, lost=2)
    assert set(hashes) <= token_hashes(seeded)  # the current link and the two kept beside it open the page

    assert api.cancel(claim_id).status == 200

    assert token_hashes(seeded).isdisjoint(hashes)
    assert stored(seeded, claim_id).live_token_hashes == frozenset()


def decline_by_the_current_link(api: LifecycleApi, claim_id: str) -> None:
    assert api.decide(token_in(str(sent_messages()[-1].body)), "decline").status == 200
    assert api.claim(claim_id)["state"] == "consent_declined"


def expire_by_the_sweep(api: LifecycleApi, claim_id: str, client: DynamoDBClient, clock: FixedClock) -> None:
    clock.advance(stored(client, claim_id).consent_deadline - clock.now() + timedelta(minutes=1))
    assert api.sweep()["expired"] == 1


@pytest.mark.parametrize("end", ["cancel", "decision", "expiry"])
def test_the_write_that_ends_the_link_clears_the_kept_links_from_the_claim(
    api: LifecycleApi, seeded: DynamoDBClient, clock: FixedClock, end: str
) -> None:
    """Not left stored on the claim, ignored only because the current link is gone (docs/data-model.md)."""
    claim_id, _ = with_kept_links(api, seeded, lost=2)
    assert len(stored(seeded, claim_id).kept_token_hashes) == 2

    if end == "cancel":
        assert api.cancel(claim_id).status == 200
    elif end == "decision":
        decline_by_the_current_link(api, claim_id)
    else:
        expire_by_the_sweep(api, claim_id, seeded, clock)

    claim = stored(seeded, claim_id)
    assert (claim.consent_token_hash, claim.kept_token_hashes) == (None, [])


def test_kept_links_end_when_the_sweep_expires_the_claim(
    api: LifecycleApi, seeded: DynamoDBClient, clock: FixedClock
) -> None:
    claim_id, hashes = with_kept_links(api, seeded, lost=2)

    expire_by_the_sweep(api, claim_id, seeded, clock)

    assert api.claim(claim_id)["state"] == "expired"
    assert token_hashes(seeded).isdisjoint(hashes)


def test_only_the_newest_kept_links_stay_and_one_transaction_ends_them_all(
    api: LifecycleApi, seeded: DynamoDBClient
) -> None:
    """Five emails that may have gone out, then one sent: the oldest link's token item is deleted when the newest
    MAX_KEPT_LINKS are kept; the cancellation then deletes the current link and the four kept in its transaction."""
    claim_id, hashes = with_kept_links(api, seeded, lost=MAX_KEPT_LINKS + 1)
    oldest, *kept, current = hashes
    claim = stored(seeded, claim_id)
    assert (claim.consent_token_hash, claim.kept_token_hashes) == (current, kept)
    assert oldest not in token_hashes(seeded)  # its token item is deleted: the link opens nothing
    assert {*kept, current} <= token_hashes(seeded)

    assert api.cancel(claim_id).status == 200

    assert token_hashes(seeded).isdisjoint(hashes)
