"""SnapStart priming on moto (issue 16, item 3): the calls it answers in the process reach nothing, and once it is
done the function's calls reach DynamoDB again (its before-send handler is gone)."""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest

from mci import snapstart, snapstart_requests
from tests.support.api import Caller
from tests.support.consent import FIRST_REQUEST, consent_api, recipients, sent_messages
from tests.support.reference import CONTOSO, add_customer_body

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """Priming freezes the collector's objects (a snapshot's); the rest of the test run should not inherit it."""
    yield
    gc.unfreeze()


def _priming_of(folder: str) -> partial[Any]:
    module = importlib.import_module(f"functions.{folder}.app")
    (hook,) = [h for h in snapstart.BEFORE_SNAPSHOT if isinstance(h, partial) and h.args[0] is module.app]
    return hook


def _items(client: DynamoDBClient, table: str) -> int:
    return int(client.scan(TableName=table, Select="COUNT")["Count"])


def test_after_priming_the_function_writes_to_dynamodb_again_and_priming_wrote_nothing(
    seeded: DynamoDBClient, lambda_context: Any
) -> None:
    hook = _priming_of("add_customer")
    before = {table: _items(seeded, table) for table in ("ClaimsTable", "IdempotencyTable")}

    hook()
    snapstart.run_after_restore()

    assert {table: _items(seeded, table) for table in before} == before  # its puts and transactions went nowhere
    partner = Caller(CONTOSO, ["incentives_user"], lambda_context)
    added = partner.post("/customers", add_customer_body(), headers={"idempotency-key": "after-priming"})
    assert added.status == 201, added.body
    assert _items(seeded, "ClaimsTable") > before["ClaimsTable"]
    assert _items(seeded, "IdempotencyTable") == before["IdempotencyTable"] + 1
    claim_id = added.body["claims"][0]["claim_id"]
    assert partner.get(f"/claims/{claim_id}").status == 200


def test_after_priming_a_cancel_end_to_end_a_real_cancel_changes_the_claim_on_dynamodb(
    seeded: DynamoDBClient, lambda_context: Any
) -> None:
    """The cancellation function primes one synthetic cancel end to end (its claim added and cancelled in the
    process): none of it reaches DynamoDB, and a real cancel afterwards does."""
    before = _items(seeded, "ClaimsTable")

    _priming_of("cancel_claim")()
    snapstart.run_after_restore()

    assert _items(seeded, "ClaimsTable") == before
    _a_real_cancel_changes_the_claim(lambda_context)


def _a_real_cancel_changes_the_claim(lambda_context: Any) -> None:
    partner = Caller(CONTOSO, ["incentives_user"], lambda_context)
    added = partner.post("/customers", add_customer_body())
    assert added.status == 201, added.body
    claim_id = added.body["claims"][0]["claim_id"]
    cancelled = partner.post(f"/claims/{claim_id}/cancellation", {"reason": "no longer needed"})
    assert cancelled.status == 200, cancelled.body
    assert partner.get(f"/claims/{claim_id}").body["state"] == "cancelled"


def test_a_seed_that_raises_leaves_the_function_answering_real_requests(
    monkeypatch: pytest.MonkeyPatch, seeded: DynamoDBClient, lambda_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Priming is best effort: an exception in its end-to-end part is one WARNING, the hook returns (Lambda publishes
    the version), and the function answers real requests with its real clients, on DynamoDB."""

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError

    monkeypatch.setattr(snapstart_requests, "_seed", boom)
    before = _items(seeded, "ClaimsTable")

    _priming_of("cancel_claim")()
    snapstart.run_after_restore()

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "SnapStart priming stopped at the seed: RuntimeError"
    ]
    assert _items(seeded, "ClaimsTable") == before
    _a_real_cancel_changes_the_claim(lambda_context)


def test_after_priming_the_consent_function_a_real_consent_email_reaches_ses(
    seeded: DynamoDBClient, lambda_context: Any
) -> None:
    """Priming answered the consent function's SES client ten times in the process: none reached SES, and the
    first real consent request's email does."""
    _priming_of("request_consent")()
    snapstart.run_after_restore()
    assert sent_messages() == []

    api = consent_api(lambda_context)
    answer = api.request(api.add_claim(), FIRST_REQUEST)

    assert answer.status == 200, answer.body
    [message] = sent_messages()
    assert recipients(message) == ["ana@fabrikam.com"]
    assert message.id == answer.body["consent_email"]["message_id"]
