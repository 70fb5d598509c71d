"""ClientRequestToken on every TransactWriteItems, on the real engine (moto ignores the token).

botocore resends a call whose answer it lost: with the token, DynamoDB applies the transaction once and
answers the resend with success, changing nothing. The same token with other items is an
IdempotentParameterMismatch, which the adapter answers as a concurrent change (re-read, new items, new token).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from mci.adapters.dynamodb_claims import DynamoDBClaimRepository
from mci.domain.claims import ClaimState
from mci.domain.clock import FixedClock
from mci.domain.commands import AddCustomer
from mci.domain.ports import ClaimChange, ConcurrentChange
from mci.domain.principal import Principal
from tests.support.claims import dynamodb_nominations, race_reference_data
from tests.support.reference import CONTOSO, CONTOSO_MADRID, NOW, add_customer_body

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.dynamodb_local


class SentTransactions:
    """Every TransactWriteItems call of a client, exactly as the adapter sent it (after botocore's defaults)."""

    def __init__(self, client: DynamoDBClient) -> None:
        self.sent: list[dict[str, Any]] = []
        self.force_token: str | None = None
        client.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", self._seen)

    def _seen(self, params: dict[str, Any], **_: Any) -> None:
        if self.force_token is not None:
            params["ClientRequestToken"] = self.force_token
        self.sent.append(copy.deepcopy(params))


@pytest.fixture
def sent(dynamodb_local_client: DynamoDBClient) -> Iterator[SentTransactions]:
    recorder = SentTransactions(dynamodb_local_client)
    yield recorder
    dynamodb_local_client.meta.events.unregister("before-parameter-build.dynamodb.TransactWriteItems", recorder._seen)


def every_item(client: DynamoDBClient, table: str) -> list[dict[str, Any]]:
    return [item for page in client.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]


def user(request_id: str) -> Principal:
    return Principal(CONTOSO, roles=frozenset({"incentives_user"}), user_id="user-1", request_id=request_id)


def add_command(**overrides: Any) -> AddCustomer:
    return AddCustomer.model_validate(add_customer_body(location_id=CONTOSO_MADRID, **overrides))


def test_a_transaction_resent_with_its_token_applies_once(
    dynamodb_local_client: DynamoDBClient, dynamodb_local_tables: dict[str, str], sent: SentTransactions
) -> None:
    """As botocore resends a call whose answer it lost: right after the first, with the same parameters."""
    table = dynamodb_local_tables["ClaimsTable"]
    nominations = dynamodb_nominations(dynamodb_local_client, table, FixedClock(NOW))
    nominations.reference.save(race_reference_data())
    repository = DynamoDBClaimRepository(dynamodb_local_client, table)
    (claim,) = nominations.add_customer(user("request-1"), add_command())
    cancelled = claim.transition(
        ClaimState.CANCELLED, at=NOW, actor="partner", reason="changed plans", request_id="request-2"
    )
    for write in (lambda: None, lambda: repository.apply(ClaimChange(before=claim, after=cancelled))):
        write()
        call = sent.sent[-1]
        token = call.get("ClientRequestToken")
        assert isinstance(token, str)
        assert 1 <= len(token) <= 36
        stored = every_item(dynamodb_local_client, table)
        dynamodb_local_client.transact_write_items(**call)  # the resend: success, and nothing changes
        assert every_item(dynamodb_local_client, table) == stored
        without_token = {k: v for k, v in call.items() if k != "ClientRequestToken"}
        with pytest.raises(ClientError) as refused:  # the same items without the token: a new transaction
            dynamodb_local_client.transact_write_items(**without_token)
        assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert len(sent.sent) == 6
    assert sent.sent[0]["ClientRequestToken"] != sent.sent[3]["ClientRequestToken"]


def test_a_token_reused_with_other_items_is_a_concurrent_change(
    dynamodb_local_client: DynamoDBClient, dynamodb_local_tables: dict[str, str], sent: SentTransactions
) -> None:
    table = dynamodb_local_tables["ClaimsTable"]
    nominations = dynamodb_nominations(dynamodb_local_client, table, FixedClock(NOW))
    nominations.reference.save(race_reference_data())
    repository = DynamoDBClaimRepository(dynamodb_local_client, table)
    (claim,) = nominations.add_customer(user("request-1"), add_command())
    stored = every_item(dynamodb_local_client, table)
    sent.force_token = sent.sent[0]["ClientRequestToken"]
    cancelled = claim.transition(ClaimState.CANCELLED, at=NOW, actor="partner", reason="x", request_id="request-2")
    with pytest.raises(ConcurrentChange, match="IdempotentParameterMismatch"):
        repository.apply(ClaimChange(before=claim, after=cancelled))
    assert every_item(dynamodb_local_client, table) == stored


def test_two_requests_writing_the_same_change_never_share_a_token(
    dynamodb_local_client: DynamoDBClient, dynamodb_local_tables: dict[str, str], sent: SentTransactions
) -> None:
    """A retry after a conflict re-reads and writes other items: another token, never a mismatch."""
    table = dynamodb_local_tables["ClaimsTable"]
    nominations = dynamodb_nominations(dynamodb_local_client, table, FixedClock(NOW))
    nominations.reference.save(race_reference_data())
    repository = DynamoDBClaimRepository(dynamodb_local_client, table)
    (claim,) = nominations.add_customer(user("request-1"), add_command())
    first = claim.transition(ClaimState.CANCELLED, at=NOW, actor="partner", reason="x", request_id="request-2")
    again = claim.transition(ClaimState.CANCELLED, at=NOW, actor="partner", reason="x", request_id="request-3")
    repository.apply(ClaimChange(before=claim, after=first))
    with pytest.raises(ConcurrentChange):
        repository.apply(ClaimChange(before=claim, after=again))  # stale: refused by its condition
    tokens = [call["ClientRequestToken"] for call in sent.sent if "ClientRequestToken" in call]
    assert len(tokens) == len(set(tokens)) == 3
