"""One call of each AWS operation answered in the process (SnapStart priming, issue 16 item 3)."""

from __future__ import annotations

import json
import socket
from typing import Any

import boto3
import botocore.hooks
import pytest
from botocore.endpoint import Endpoint

from mci.adapters.aws import CLIENTS
from mci.adapters.aws_priming import answered_here, prime_operations


@pytest.fixture(autouse=True)
def _nothing_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a request left the process: {args}")

    monkeypatch.setattr(Endpoint, "_send", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("service", sorted(CLIENTS))
def test_every_operation_of_the_services_the_adapters_use_is_primed_without_a_request(service: str) -> None:
    """Parameters come from each operation's input shape, so an operation an adapter starts calling primes too."""
    client = boto3.session.Session().client(service)  # type: ignore[call-overload]
    operations = client.meta.service_model.operation_names

    assert list(dict.fromkeys(prime_operations(client, operations))) == operations  # each, in order


def test_a_transaction_is_primed_for_every_number_of_items_it_may_take() -> None:
    """botocore resolves and caches the endpoint per list of tables a call names: one per item of a transaction."""
    client = boto3.session.Session().client("dynamodb")
    sizes: list[int] = []
    client.meta.events.register(
        "before-send.dynamodb.TransactWriteItems",
        lambda request, **_: sizes.append(len(json.loads(request.body)["TransactItems"])),
    )

    prime_operations(client, ["TransactWriteItems"], "ClaimsTable")

    assert set(range(1, 101)) <= set(sizes)


def test_the_answering_handler_is_gone_afterwards(monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.session.Session().client("dynamodb")
    sent: list[str] = []
    monkeypatch.setattr(Endpoint, "_send", lambda endpoint, request: sent.append(request.url) or 1 / 0)

    with answered_here(client) as answered:
        assert client.get_item(TableName="t", Key={"PK": {"S": "x"}})["ResponseMetadata"]["HTTPStatusCode"] == 200

    with pytest.raises(ZeroDivisionError):  # botocore's own path again, to the network (refused here)
        client.get_item(TableName="t", Key={"PK": {"S": "x"}})
    assert answered == ["GetItem"]
    assert sent == ["https://dynamodb.us-east-1.amazonaws.com/"]


def test_the_answer_holds_every_member_of_the_output_and_the_calls_name_the_table() -> None:
    """Parsing a real answer builds the output's shapes: the canned one has them all. The endpoint is resolved
    (and cached) per table a call names: the priming calls name the function's."""
    client = boto3.session.Session().client("dynamodb")
    tables: list[str] = []
    client.meta.events.register(
        "before-send", lambda request, **_: tables.append(json.loads(request.body)["TableName"])
    )

    with answered_here(client):
        found = client.get_item(TableName="ClaimsTable", Key={"PK": {"S": "x"}})
    prime_operations(client, ["Query"], "ClaimsTable")

    assert set(found) == {"Item", "ConsumedCapacity", "ResponseMetadata"}
    assert {kind for value in found["Item"].values() for kind in value} >= {"S", "N", "M", "L", "BOOL", "NULL"}
    assert tables == ["ClaimsTable", "ClaimsTable"]


def test_after_priming_the_first_call_looks_up_no_event_handlers_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore empties its cache of each event's handlers when the priming handler is unregistered; priming puts
    back what it looked up (without its handler), so the first request does not look them all up again."""
    client = boto3.session.Session().client("dynamodb")
    prime_operations(client, ["GetItem"], "ClaimsTable")
    lookups: list[str] = []
    search = botocore.hooks._PrefixTrie.prefix_search
    monkeypatch.setattr(
        botocore.hooks._PrefixTrie, "prefix_search", lambda trie, key: lookups.append(key) or search(trie, key)
    )
    monkeypatch.setattr(Endpoint, "_send", lambda endpoint, request: 1 / 0)

    with pytest.raises(ZeroDivisionError):  # past the priming: on its way to the network
        client.get_item(TableName="ClaimsTable", Key={"PK": {"S": "x"}})

    assert lookups == ["after-call-error.dynamodb.GetItem"]  # only the failure's event, which priming never met


def test_after_priming_every_operation_finds_its_endpoint_resolved() -> None:
    """botocore keeps resolved endpoints in one cache of 100 for the whole process: priming a transaction of each
    size (100 of them) must not push out what the single-table operations resolved, or the first request resolves
    its endpoint again (the profile of a first consent page GET after priming showed it: botocore's rule engine)."""
    from botocore.endpoint_provider import EndpointProvider

    client = boto3.session.Session().client("dynamodb")
    prime_operations(client, ["GetItem", "Query", "TransactWriteItems"], "ClaimsTable")
    resolved = EndpointProvider._resolve_endpoint.cache_info().misses  # type: ignore[attr-defined]

    with answered_here(client):
        client.get_item(TableName="ClaimsTable", Key={"PK": {"S": "x"}})
        client.query(TableName="ClaimsTable", KeyConditionExpression="PK = :pk", ExpressionAttributeValues={})
        client.transact_write_items(TransactItems=[{"Put": {"TableName": "ClaimsTable", "Item": {}}}] * 3)

    assert EndpointProvider._resolve_endpoint.cache_info().misses == resolved  # type: ignore[attr-defined]


def test_a_second_priming_of_the_same_client_keeps_what_the_first_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A function whose routes take an Idempotency-Key primes its DynamoDB client twice (its adapters' operations,
    then Powertools idempotency's record): registering the second answering handler empties botocore's cache of
    event handlers again, and the first priming's lookups must come back with the second's."""
    client = boto3.session.Session().client("dynamodb")
    prime_operations(client, ["GetItem"], "ClaimsTable")
    with answered_here(client):
        client.put_item(TableName="IdempotencyTable", Item={"id": {"S": "x"}})
    lookups: list[str] = []
    search = botocore.hooks._PrefixTrie.prefix_search
    monkeypatch.setattr(
        botocore.hooks._PrefixTrie, "prefix_search", lambda trie, key: lookups.append(key) or search(trie, key)
    )
    monkeypatch.setattr(Endpoint, "_send", lambda endpoint, request: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        client.get_item(TableName="ClaimsTable", Key={"PK": {"S": "x"}})

    assert lookups == ["after-call-error.dynamodb.GetItem"]


def test_after_priming_reading_an_item_that_nests_maps_and_lists_builds_no_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """botocore builds the shapes of a DynamoDB value once per level of nesting (a value in a map in a list is a
    third level): a claim's item nests lists of maps and maps of lists, so priming's answer nests that deep and one
    level more, or the first real request builds the rest (the profile of a first cancel after priming)."""
    import botocore.model
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    from mci.adapters.aws_priming import PRIMED_URL, _Body

    client = boto3.session.Session().client("dynamodb")
    prime_operations(client, ["GetItem"], "ClaimsTable")
    nested = {"L": [{"M": {"a": {"L": [{"S": "x"}, {"N": "1"}]}}}]}  # our items nest two deep; one more here
    item = {"PK": {"S": "x"}, "history": nested, "payment": {"M": {"c": {"L": [{"M": {"d": {"BOOL": True}}}]}}}}

    def answer(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(PRIMED_URL, 200, HTTPHeaders(), _Body(json.dumps({"Item": item}).encode()))

    client.meta.events.register_first("before-send.dynamodb", answer)
    built: list[str] = []
    resolve = botocore.model.ShapeResolver.get_shape_by_name
    monkeypatch.setattr(
        botocore.model.ShapeResolver,
        "get_shape_by_name",
        lambda resolver, name, member_traits=None: built.append(name) or resolve(resolver, name, member_traits),
    )

    assert client.get_item(TableName="ClaimsTable", Key={"PK": {"S": "x"}})["Item"] == item

    assert built == []
