"""Rule 20: every committed change of a claim or referral becomes one domain event of its documented schema.

The memory fake gets a stream here (``StreamedClaims``: each committed write of a claim or referral as its
old and new item, in commit order); its records, shaped as Lambda delivers DynamoDB stream records, go
through the real PublishEventsFunction handler to a fake bus. The bus fakes EventBridge's PutEvents:
each entry is accepted or refused on its own, and a refused entry does not stop the ones after it.

The JSON schemas are the documented ones (``docs/events/<DetailType>.v<version>.schema.json``, linked from
docs/events.md), checked with a small validator for the keywords they use, and as JSON Schema by
jsonschema (a dev dependency, requirements-dev.txt). Each change is published in every version the publisher's
PUBLISHED_EVENT_VERSIONS names (by default 1 and 2, docs/events.md#versions); the fake bus keeps what a subscriber
of each version receives.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from mci import wiring
from mci.adapters.dynamodb_claims import claim_head_from_item, claim_item, referral_item
from mci.adapters.memory import MemoryClaimRepository
from mci.domain.claims import Claim, ClaimState, ConsentRequests, Decision
from mci.domain.commands import AddCustomer, ConsentRequest
from mci.domain.errors import DependencyUnavailable
from mci.domain.events import (
    EVENT_TYPES,
    SCHEMA_VERSIONS,
    SOURCE,
    ClaimHead,
    DomainEvent,
    claim_event,
    publish_in_order,
)
from mci.domain.ports import ClaimChange, ConcurrentChange, NewClaims
from mci.domain.principal import Principal
from mci.domain.referrals import Referral
from mci.settings import Settings
from tests.support.consent import FIRST_REQUEST, principal, token_in
from tests.support.memory_lifecycle import MemoryLifecycle
from tests.support.reference import CONTOSO, FABRIKAM_TENANT, SECURITY, add_customer_body

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = ROOT / "docs" / "events"
EVENTS_DOC = ROOT / "docs" / "events.md"
# Keywords the documented schemas may use: exactly what ``violations`` checks (nothing silently ignored).
CHECKED_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "enum",
        "const",
        "pattern",
        "minimum",
        "exclusiveMinimum",
        "minLength",
        "maxLength",
        "format",
    }
)
ANNOTATIONS = frozenset({"$schema", "$id", "title", "description"})
# Contact details of the claims these tests make (tests.support.reference.add_customer_body).
PERSONAL_DATA = ("Ana García", "ana@fabrikam.com", "Sam Lee", "sam@contoso-partners.com", "Fabrikam migration")
HOUR = timedelta(hours=1)
STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/ClaimsTable/stream/2026-11-27T00:00:00.000"


# ---------------------------------------------------------------- the documented schemas


def schema_path(detail_type: str, version: str = "1") -> Path:
    return SCHEMAS_DIR / f"{detail_type}.v{version}.schema.json"


def schema_for(detail_type: str, version: str = "1") -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_path(detail_type, version).read_text(encoding="utf-8"))
    return schema


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _same(value: Any, expected: Any) -> bool:
    return bool(value == expected) and isinstance(value, bool) == isinstance(expected, bool)


def _date_time(text: str) -> bool:
    """ISO 8601 in UTC with a Z, as mci.domain.clock.isoformat writes it."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z", text):
        return False
    return datetime.fromisoformat(text.replace("Z", "+00:00")).tzinfo is not None


def violations(schema: dict[str, Any], value: Any, path: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema`` (the subset of JSON Schema 2020-12 in CHECKED_KEYWORDS)."""
    found: list[str] = []
    types = schema.get("type")
    if types is not None and not any(_TYPES[t](value) for t in ([types] if isinstance(types, str) else types)):
        return [f"{path}: {value!r} is not of type {types}"]
    if "const" in schema and not _same(value, schema["const"]):
        found.append(f"{path}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        found.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            found.append(f"{path}: length {len(value)} out of bounds")
        if schema.get("format") == "date-time" and not _date_time(value):
            found.append(f"{path}: {value!r} is not an ISO 8601 UTC time")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            found.append(f"{path}: {value} < {schema['minimum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            found.append(f"{path}: {value} <= {schema['exclusiveMinimum']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found += [f"{path}: {name} is missing" for name in schema.get("required", []) if name not in value]
        if schema.get("additionalProperties") is False:
            found += [f"{path}: {name} is not allowed" for name in value if name not in properties]
        for name, item in value.items():
            if name in properties:
                found += violations(properties[name], item, f"{path}.{name}")
    return found


def assert_valid_event(detail_type: str, detail: dict[str, Any]) -> None:
    """The detail of a published event is valid against the documented schema of its detail-type and version."""
    version = str(detail.get("schema_version"))
    assert version in SCHEMA_VERSIONS, f"{detail_type}: unknown schema_version {version!r}"
    broken = violations(schema_for(detail_type, version), detail)
    assert not broken, f"{detail_type} v{version}: {broken}"
    jsonschema.validate(detail, schema_for(detail_type, version), cls=jsonschema.Draft202012Validator)


def _keywords(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        for name, value in schema.items():
            yield name
            if name == "properties":
                for nested in value.values():
                    yield from _keywords(nested)


def test_every_event_type_has_a_versioned_schema() -> None:
    assert len(EVENT_TYPES) == 11
    assert SCHEMA_VERSIONS == ("1", "2")
    assert sorted(p.name for p in SCHEMAS_DIR.glob("*.schema.json")) == sorted(
        schema_path(t, v).name for t in EVENT_TYPES for v in SCHEMA_VERSIONS
    )
    for detail_type in EVENT_TYPES:
        for version in SCHEMA_VERSIONS:
            schema = schema_for(detail_type, version)
            assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
            assert schema["$id"] == f"urn:mci-customers:events:{detail_type}:{version}"
            assert schema["type"] == "object"
            assert schema["additionalProperties"] is False
            assert set(schema["required"]) == set(schema["properties"])
            assert schema["properties"]["schema_version"] == {
                **schema["properties"]["schema_version"],
                "const": version,
            }
            assert detail_type in schema["properties"]["event_id"]["pattern"]
            used = set(_keywords(schema))
            assert used <= CHECKED_KEYWORDS | ANNOTATIONS, (
                f"{detail_type} uses unchecked keywords {used - CHECKED_KEYWORDS}"
            )


def test_each_v2_schema_is_its_v1_schema_and_a_correlation_id() -> None:
    """docs/events.md#versions: v2 adds one field and changes nothing else, so a v1 consumer moves by adding it."""
    for detail_type in EVENT_TYPES:
        v1, v2 = schema_for(detail_type, "1"), schema_for(detail_type, "2")
        added = v2["properties"].pop("correlation_id")
        assert added["type"] == ["string", "null"]
        assert v2["required"] == [*v1["required"], "correlation_id"]
        assert {**v2["properties"], "schema_version": v1["properties"]["schema_version"]} == v1["properties"]
        assert v2["properties"]["schema_version"]["const"] == "2"


def test_no_schema_has_a_field_for_personal_data() -> None:
    for detail_type in EVENT_TYPES:
        for version in SCHEMA_VERSIONS:
            text = schema_path(detail_type, version).read_text(encoding="utf-8")
            names = set(re.findall(r'"([a-z_]+)": \{', text))
            assert not {n for n in names if re.search(r"name|email|phone|contact", n)}, detail_type


def test_the_schemas_are_valid_json_schema() -> None:
    for detail_type in EVENT_TYPES:
        for version in SCHEMA_VERSIONS:
            jsonschema.Draft202012Validator.check_schema(schema_for(detail_type, version))


def test_events_md_documents_every_type_its_schema_and_the_source() -> None:
    text = EVENTS_DOC.read_text(encoding="utf-8")
    assert f"`{SOURCE}`" in text
    for detail_type in EVENT_TYPES:
        assert f"### {detail_type}" in text, detail_type
        for version in SCHEMA_VERSIONS:
            assert f"events/{schema_path(detail_type, version).name}" in text, (detail_type, version)


# ---------------------------------------------------------------- the memory fake with a stream


class StreamedClaims(MemoryClaimRepository):
    """The memory fake, recording each committed write of a claim or referral (old, new) in commit order.

    A write that raises (ConcurrentChange) records nothing, as DynamoDB writes no stream record for a
    cancelled transaction.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stream: list[tuple[Any, Any]] = []

    def create(self, new: NewClaims) -> None:
        before = dict(self.claims), dict(self.referrals)
        super().create(new)
        self._record(*before)

    def apply(self, change: ClaimChange) -> None:
        before = dict(self.claims), dict(self.referrals)
        super().apply(change)
        self._record(*before)

    def _record(self, claims: dict[str, Claim], referrals: dict[str, Referral]) -> None:
        self.stream += [(claims.get(k), v) for k, v in self.claims.items() if claims.get(k) is not v]
        self.stream += [(referrals.get(k), v) for k, v in self.referrals.items() if referrals.get(k) is not v]


def _image(model: Claim | Referral) -> dict[str, Any]:
    return claim_item(model) if isinstance(model, Claim) else referral_item(model)


def stream_records(changes: Sequence[tuple[Any, Any]], first_sequence: int = 100) -> list[dict[str, Any]]:
    """The changes as Lambda delivers DynamoDB stream records (NEW_AND_OLD_IMAGES)."""
    records = []
    for offset, (old, new) in enumerate(changes):
        image = _image(new)
        change: dict[str, Any] = {
            "ApproximateCreationDateTime": 1_795_000_000 + offset,
            "Keys": {"PK": image["PK"], "SK": image["SK"]},
            "NewImage": image,
            "SequenceNumber": str(first_sequence + offset),
            "SizeBytes": len(json.dumps(image)),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if old is not None:
            change["OldImage"] = _image(old)
        records.append(
            {
                "eventID": f"e{first_sequence + offset}",
                "eventName": "MODIFY" if old is not None else "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": change,
                "eventSourceARN": STREAM_ARN,
            }
        )
    return records


# ---------------------------------------------------------------- a bus that behaves like PutEvents


@dataclass
class PutEventsLikeBus:
    """Accepts or refuses each entry on its own, as EventBridge PutEvents does: a refused entry does not stop
    the entries after it in the same call. ``refuse`` maps an event id (an entry of any version) or
    ``<event id>@v<version>`` (that version's entry only) to how many more times to refuse it; ``throttle`` makes
    the next calls raise as a throttled PutEvents does.

    ``received[version]`` is what a subscriber of that schema version gets (a rule matching ``schema_version``);
    ``published`` is version 1's, the stream these tests were first written against."""

    refuse: dict[str, int] = field(default_factory=dict)
    throttle: int = 0
    received: dict[str, list[DomainEvent]] = field(default_factory=lambda: {v: [] for v in SCHEMA_VERSIONS})
    calls: list[list[str]] = field(default_factory=list)

    def publish(self, events: Sequence[DomainEvent]) -> list[bool]:
        self.calls.append([e.event_id for e in events])
        if self.throttle > 0:
            self.throttle -= 1
            raise DependencyUnavailable("EventBridge is busy; retry shortly.", retry_after_seconds=1)
        flags = []
        for event in events:
            version = str(event.detail["schema_version"])
            refused = next((k for k in (f"{event.event_id}@v{version}", event.event_id) if self.refuse.get(k, 0)), None)
            if refused is not None:
                self.refuse[refused] -= 1
                flags.append(False)
            else:
                self.received[version].append(event)
                flags.append(True)
        return flags

    @property
    def published(self) -> list[DomainEvent]:
        return self.received["1"]

    @property
    def published_ids(self) -> list[str]:
        return [e.event_id for e in self.published]


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> PutEventsLikeBus:
    """The publisher's bus, as mci.wiring.event_bus() would build it, replaced by the fake."""
    fake = PutEventsLikeBus()
    monkeypatch.setattr(importlib.import_module("functions.publish_events.app"), "event_bus", lambda: fake)
    return fake


def publisher(event: dict[str, Any], context: Any) -> dict[str, Any]:
    handler = importlib.import_module("functions.publish_events.app").lambda_handler
    result: dict[str, Any] = handler(event, context)
    return result


def deliver(records: list[dict[str, Any]], context: Any, attempts: int = 10) -> list[dict[str, Any]]:
    """Lambda's stream poller: invoke with the batch, then again from the first reported failure; the results."""
    results = []
    remaining = records
    for _ in range(attempts):
        result = publisher({"Records": remaining}, context)
        results.append(result)
        failures = result["batchItemFailures"]
        if not failures:
            return results
        failed = {f["itemIdentifier"] for f in failures}
        remaining = remaining[min(i for i, r in enumerate(remaining) if r["dynamodb"]["SequenceNumber"] in failed) :]
    raise AssertionError(f"still failing after {attempts} invocations: {results}")


# ---------------------------------------------------------------- the flows


def streamed_world() -> MemoryLifecycle:
    return MemoryLifecycle(claims=StreamedClaims())


def stream_of(world: MemoryLifecycle) -> list[tuple[Any, Any]]:
    claims = world.claims
    assert isinstance(claims, StreamedClaims)
    return claims.stream


def _added(world: MemoryLifecycle, **overrides: Any) -> str:
    return world.add(**overrides).claim_id


def _requested(world: MemoryLifecycle, **overrides: Any) -> str:
    claim_id = _added(world, **overrides)
    world.request(claim_id, **FIRST_REQUEST)
    return claim_id


def _granted(world: MemoryLifecycle, **overrides: Any) -> str:
    return world.granted(**overrides).claim_id


def flow_completed(world: MemoryLifecycle) -> str:
    claim_id = _requested(world)
    world.clock.advance(HOUR)
    world.request(claim_id)  # a resend: ConsentRequested again
    token = token_in(world.mailer.sent[-1].text)
    world.decisions.decide(token, Decision.ACCEPT)
    world.submit(claim_id)
    world.review(claim_id, "complete")
    return claim_id


def flow_rejected(world: MemoryLifecycle) -> str:
    claim_id = world.submitted().claim_id
    world.review(claim_id, "reject", reason="no evidence of the assessment")
    return claim_id


def flow_declined(world: MemoryLifecycle) -> str:
    return world.declined().claim_id


def flow_cancelled_pending(world: MemoryLifecycle) -> str:
    claim_id = _added(world)
    world.cancel(claim_id)
    return claim_id


def flow_cancelled_granted(world: MemoryLifecycle) -> str:
    claim_id = _granted(world)
    world.cancel(claim_id)
    return claim_id


def flow_expired_requested(world: MemoryLifecycle) -> str:
    claim_id = _requested(world)
    world.clock.advance(timedelta(days=31))
    world.sweep()
    return claim_id


def flow_expired_granted(world: MemoryLifecycle) -> str:
    claim_id = _granted(world)
    world.clock.advance(timedelta(days=91))
    world.sweep()
    return claim_id


def flow_claimed_again(world: MemoryLifecycle) -> str:
    first = _granted(world, engagement_ids=[SECURITY])
    world.cancel(first)
    (claim,) = world.claim_customer(f"tenant_id:{FABRIKAM_TENANT}", engagement_ids=[SECURITY])
    return claim.claim_id


FLOWS: dict[str, tuple[Callable[[MemoryLifecycle], str], list[str]]] = {
    # With a deal of 25000 on e-azure-migrate (referrals on, minimum 10000) and Fabrikam (co-sell allowed).
    "completed": (
        flow_completed,
        [
            "ClaimCreated",
            "ConsentRequested",
            "ReferralCreated",
            "ConsentRequested",
            "ConsentGranted",
            "ReferralUpgradedToCoSell",
            "ClaimSubmitted",
            "ClaimCompleted",
        ],
    ),
    "rejected": (
        flow_rejected,
        [
            "ClaimCreated",
            "ConsentRequested",
            "ReferralCreated",
            "ConsentGranted",
            "ReferralUpgradedToCoSell",
            "ClaimSubmitted",
            "ClaimRejected",
        ],
    ),
    "declined": (flow_declined, ["ClaimCreated", "ConsentRequested", "ReferralCreated", "ConsentDeclined"]),
    "cancelled while pending": (flow_cancelled_pending, ["ClaimCreated", "ClaimCancelled"]),
    "cancelled once granted": (
        flow_cancelled_granted,
        [
            "ClaimCreated",
            "ConsentRequested",
            "ReferralCreated",
            "ConsentGranted",
            "ReferralUpgradedToCoSell",
            "ClaimCancelled",
        ],
    ),
    "expired waiting for consent": (
        flow_expired_requested,
        ["ClaimCreated", "ConsentRequested", "ReferralCreated", "ClaimExpired"],
    ),
    "expired waiting for submission": (
        flow_expired_granted,
        [
            "ClaimCreated",
            "ConsentRequested",
            "ReferralCreated",
            "ConsentGranted",
            "ReferralUpgradedToCoSell",
            "ClaimExpired",
        ],
    ),
    # e-security-workshop has referrals off: no referral events at all.
    "claimed again": (
        flow_claimed_again,
        ["ClaimCreated", "ConsentRequested", "ConsentGranted", "ClaimCancelled", "ClaimCreated"],
    ),
}


def published_details(bus: PutEventsLikeBus, version: str = "1") -> list[tuple[str, dict[str, Any]]]:
    return [(e.detail_type, e.detail) for e in bus.received[version]]


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_each_committed_transition_publishes_exactly_one_event_of_its_schema(
    flow: str, bus: PutEventsLikeBus, lambda_context: Any
) -> None:
    run, expected = FLOWS[flow]
    world = streamed_world()
    claim_id = run(world)

    results = deliver(stream_records(stream_of(world)), lambda_context)

    assert results == [{"batchItemFailures": []}]
    assert [detail_type for detail_type, _ in published_details(bus)] == expected
    for detail_type, detail in published_details(bus):
        assert_valid_event(detail_type, detail)
    assert len(set(bus.published_ids)) == len(bus.published_ids)
    # One claim event per entry of the claim's history (plus one per resend), in the same order.
    claim = world.stored(claim_id)
    mine = [d for t, d in published_details(bus) if d.get("claim_id") == claim_id and "to_state" in d]
    resends = claim.consent_requests.count - 1 if claim.consent_requests.count else 0
    assert len(mine) == len(claim.history) + resends
    assert [d["to_state"] for d in mine if d["from_state"] != d["to_state"]] == [h.to.value for h in claim.history]
    assert mine[-1]["claim_version"] <= claim.version


def test_every_event_type_is_published_by_some_flow(bus: PutEventsLikeBus, lambda_context: Any) -> None:
    for run, _ in FLOWS.values():
        world = streamed_world()
        run(world)
        deliver(stream_records(stream_of(world)), lambda_context)
    assert {e.detail_type for e in bus.published} == set(EVENT_TYPES)


def test_writes_that_move_no_state_publish_nothing(bus: PutEventsLikeBus, lambda_context: Any) -> None:
    world = streamed_world()
    claim_id = _requested(world)  # the request, then the email marked sent (a second write)
    world.clock.advance(timedelta(days=23, hours=1))
    world.sweep()  # the 7-day reminder marked sent, in the outbox; then out of it, sent (two writes)
    stream = stream_of(world)
    kinds = [(type(new).__name__, new.version if isinstance(new, Claim) else None) for _, new in stream]

    deliver(stream_records(stream), lambda_context)

    assert kinds == [("Claim", 1), ("Claim", 2), ("Referral", None), ("Claim", 3), ("Claim", 4), ("Claim", 5)]
    assert [e.detail_type for e in bus.published] == ["ClaimCreated", "ConsentRequested", "ReferralCreated"]
    assert world.stored(claim_id).version == 5


def test_a_write_that_fails_leaves_no_record_and_no_event(bus: PutEventsLikeBus, lambda_context: Any) -> None:
    world = streamed_world()
    claim = world.add()
    moved = world.cancel(claim.claim_id)
    recorded = len(stream_of(world))
    stale = claim.transition(ClaimState.CONSENT_REQUESTED, at=claim.created_at, actor="x", reason="stale")

    with pytest.raises(ConcurrentChange):
        world.claims.apply(ClaimChange(before=claim, after=stale))

    assert world.stored(claim.claim_id) == moved
    assert len(stream_of(world)) == recorded
    deliver(stream_records(stream_of(world)), lambda_context)
    assert [e.detail_type for e in bus.published] == ["ClaimCreated", "ClaimCancelled"]


def test_no_event_carries_contact_details_or_the_friendly_name(bus: PutEventsLikeBus, lambda_context: Any) -> None:
    for run, _ in FLOWS.values():
        world = streamed_world()
        run(world)
        deliver(stream_records(stream_of(world)), lambda_context)
    text = json.dumps([e.detail for e in bus.published], ensure_ascii=False)
    for personal in PERSONAL_DATA:
        assert personal not in text


def test_free_text_a_person_typed_never_reaches_an_event(bus: PutEventsLikeBus, lambda_context: Any) -> None:
    world = streamed_world()
    claim_id = _added(world)
    world.cancel(claim_id, reason="Ana García (ana@fabrikam.com, +34 600 000 000) left the company")

    deliver(stream_records(stream_of(world)), lambda_context)

    text = json.dumps([e.detail for e in bus.published], ensure_ascii=False)
    assert "ana@fabrikam.com" not in text
    assert "Ana García" not in text


def test_event_ids_are_deterministic_so_a_redelivery_deduplicates(bus: PutEventsLikeBus, lambda_context: Any) -> None:
    world = streamed_world()
    flow_completed(world)
    records = stream_records(stream_of(world))

    deliver(records, lambda_context)
    first = bus.published_ids
    bus.published.clear()
    deliver(stream_records(stream_of(world), first_sequence=900), lambda_context)  # the same changes again

    assert bus.published_ids == first
    assert len(set(first)) == len(first)
    claim_ids = [i for i in first if i.count(":") == 2]
    assert all(re.fullmatch(r"[^:]+:[1-9][0-9]*:[A-Za-z]+", i) for i in claim_ids)


def test_only_a_new_claim_a_state_move_or_a_resend_is_a_claim_event() -> None:
    world = streamed_world()
    claim = world.add()
    later = claim.model_copy(update={"updated_at": datetime(2027, 1, 1, tzinfo=UTC), "version": claim.version + 1})
    assert claim_event(None, claim) is not None
    assert claim_event(claim, later) is None  # a write that moves no state is no event
    assert claim_event(claim, None) is None  # a removal is no event


def test_the_head_of_a_stored_image_decides_as_the_whole_claim_does() -> None:
    """The publisher decides on two attributes of the raw old image instead of validating it (proposal 8)."""
    claim = streamed_world().add()
    resent = claim.model_copy(
        update={
            "state": ClaimState.CONSENT_REQUESTED,
            "consent_requests": ConsentRequests(count=3, last_sent_at=claim.created_at),
            "version": claim.version + 1,
        }
    )
    for image in (claim, resent):
        assert claim_head_from_item(claim_item(image)) == ClaimHead.of(image)
    assert claim_event(ClaimHead.of(claim), resent) == claim_event(claim, resent)
    assert claim_event(ClaimHead.of(resent), resent) is None


# ---------------------------------------------------------------- publisher failures (partial batch responses)


def refused_at(world: MemoryLifecycle, position: int, bus: PutEventsLikeBus) -> list[dict[str, Any]]:
    """The flow's records, with the event of the ``position``-th event-bearing record refused once."""
    records = stream_records(stream_of(world))
    app = importlib.import_module("functions.publish_events.app")
    events = [e for r in records if (e := app.event_of(r)) is not None]
    bus.refuse[events[position].event_id] = 1
    return records


@pytest.mark.parametrize(
    "position",
    [
        0,
        3,
        7,
    ],
    ids=["first", "middle", "last"],
)
def test_a_refused_event_is_retried_from_its_record_and_every_event_is_published_once(
    position: int, bus: PutEventsLikeBus, lambda_context: Any
) -> None:
    world = streamed_world()
    flow_completed(world)
    records = refused_at(world, position, bus)

    results = deliver(records, lambda_context)

    assert len(results) == 2
    failed = results[0]["batchItemFailures"]
    app = importlib.import_module("functions.publish_events.app")
    bearing = [r for r in records if app.event_of(r) is not None]
    assert failed == [{"itemIdentifier": bearing[position]["dynamodb"]["SequenceNumber"]}]
    assert results[1] == {"batchItemFailures": []}
    expected = FLOWS["completed"][1]
    assert [e.detail_type for e in bus.published] == expected, "each record's event exactly once"
    assert len(set(bus.published_ids)) == len(bus.published_ids) == len(expected)


def test_a_throttled_bus_fails_the_batch_from_its_first_event_and_the_retry_publishes_each_once(
    bus: PutEventsLikeBus, lambda_context: Any
) -> None:
    world = streamed_world()
    flow_completed(world)
    records = stream_records(stream_of(world))
    bus.throttle = 1

    results = deliver(records, lambda_context)

    assert results[0] == {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
    assert results[1:] == [{"batchItemFailures": []}]
    assert [e.detail_type for e in bus.published] == FLOWS["completed"][1]


def test_a_batch_with_no_event_publishes_nothing_and_succeeds(bus: PutEventsLikeBus, lambda_context: Any) -> None:
    world = streamed_world()
    claim_id = _requested(world)
    stream = stream_of(world)
    email_marked_sent = [(old, new) for old, new in stream if isinstance(new, Claim) and new.version == 3]
    assert email_marked_sent, stream

    assert publisher({"Records": stream_records(email_marked_sent)}, lambda_context) == {"batchItemFailures": []}
    assert publisher({"Records": []}, lambda_context) == {"batchItemFailures": []}
    assert bus.calls == []
    assert world.stored(claim_id).version == 3


def test_publish_in_order_reports_the_first_refused_position() -> None:
    world = streamed_world()
    flow_declined(world)
    app = importlib.import_module("functions.publish_events.app")
    events = [app.event_of(r) for r in stream_records(stream_of(world))]
    bearing = [i for i, e in enumerate(events) if e is not None]
    fake = PutEventsLikeBus()
    refused = events[bearing[2]]
    assert refused is not None
    fake.refuse[refused.event_id] = 1

    assert publish_in_order(fake, events) == bearing[2]
    assert publish_in_order(PutEventsLikeBus(), [None, None]) is None
    assert publish_in_order(PutEventsLikeBus(), events) is None


# ---------------------------------------------------------------- version 2: the correlation id (issue 15)


def v2_of(bus: PutEventsLikeBus) -> list[tuple[str, dict[str, Any]]]:
    return published_details(bus, "2")


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_each_change_is_published_in_both_versions_the_v2_one_valid_against_its_own_schema(
    flow: str, bus: PutEventsLikeBus, lambda_context: Any
) -> None:
    run, expected = FLOWS[flow]
    world = streamed_world()
    run(world)

    deliver(stream_records(stream_of(world)), lambda_context)

    assert [t for t, _ in v2_of(bus)] == expected
    for (detail_type, v1), (_, v2) in zip(published_details(bus), v2_of(bus), strict=True):
        assert_valid_event(detail_type, v2)
        assert v2 == {**v1, "schema_version": "2", "correlation_id": v2["correlation_id"]}
    # One PutEvents call per change, holding both versions: a refusal of either retries the change whole.
    assert all(len(ids) == 2 and len(set(ids)) == 1 for ids in bus.calls)


def as_request(request_id: str, partner_id: str = CONTOSO) -> Principal:
    return replace(principal(partner_id), request_id=request_id)


def test_a_v2_event_carries_the_correlation_id_of_the_history_entry_its_change_wrote() -> None:
    claim = streamed_world().add()
    cancelled = claim.transition(ClaimState.CANCELLED, at=claim.created_at, actor="a", request_id="req-cancel")
    expired = claim.model_copy(update={"version": 2}).expired_at_deadline("schedule-event-1")
    old = claim.transition(ClaimState.CANCELLED, at=claim.created_at, actor="a", request_id="req-old")
    unkept = old.history[-1].model_copy(update={"correlation_id": None})  # an entry stored before the field was
    before_it_was_kept = old.model_copy(update={"history": [*old.history[:-1], unkept]})

    def correlation(old: Claim, new: Claim) -> Any:
        event = claim_event(old, new)
        assert event is not None
        return event.in_version("2").detail["correlation_id"]

    assert correlation(claim, cancelled) == "req-cancel"
    assert correlation(claim, expired) == "schedule-event-1"
    assert correlation(claim, before_it_was_kept) == "req-old"  # an entry stored before correlation_id: its request id
    event = claim_event(claim, cancelled)
    assert event is not None
    assert "correlation_id" not in event.in_version("1").detail


def test_v2_events_carry_the_correlation_id_of_the_request_that_committed_them(
    bus: PutEventsLikeBus, lambda_context: Any
) -> None:
    """The first request, the referral it created and a resend each carry their own request's id."""
    world = streamed_world()
    claim_id = world.nominations.add_customer(as_request("req-add"), AddCustomer.model_validate(add_customer_body()))[
        0
    ].claim_id
    world.requests.request(as_request("req-first"), claim_id, ConsentRequest.model_validate(FIRST_REQUEST))
    world.clock.advance(HOUR)
    world.requests.request(as_request("req-resend"), claim_id, ConsentRequest())

    deliver(stream_records(stream_of(world)), lambda_context)

    assert [(t, d["correlation_id"]) for t, d in v2_of(bus)] == [
        ("ClaimCreated", "req-add"),
        ("ConsentRequested", "req-first"),
        ("ReferralCreated", "req-first"),
        ("ConsentRequested", "req-resend"),
    ]


def test_the_sweeps_expiry_carries_the_runs_correlation_id(bus: PutEventsLikeBus, lambda_context: Any) -> None:
    world = streamed_world()
    _added(world)
    world.clock.advance(timedelta(days=31))
    world.sweeper.run("schedule-event-9")

    deliver(stream_records(stream_of(world)), lambda_context)

    assert v2_of(bus)[-1][0] == "ClaimExpired"
    assert v2_of(bus)[-1][1]["correlation_id"] == "schedule-event-9"


def test_a_redelivered_change_gives_the_same_v2_detail(bus: PutEventsLikeBus, lambda_context: Any) -> None:
    world = streamed_world()
    claim_id = world.nominations.add_customer(as_request("req-add"), AddCustomer.model_validate(add_customer_body()))[
        0
    ].claim_id
    world.requests.request(as_request("req-first"), claim_id, ConsentRequest.model_validate(FIRST_REQUEST))
    world.cancel(claim_id)

    deliver(stream_records(stream_of(world)), lambda_context)
    first = [e.detail for e in bus.received["2"]]
    bus.received["2"].clear()
    deliver(stream_records(stream_of(world), first_sequence=900), lambda_context)  # the same changes again

    assert [e.detail for e in bus.received["2"]] == first
    assert [d["correlation_id"] for d in first][:3] == ["req-add", "req-first", "req-first"]


@pytest.mark.parametrize(("setting", "versions"), [("1", ["1"]), ("2", ["2"]), ("1,2", ["1", "2"])])
def test_the_publisher_puts_the_versions_its_setting_names(
    setting: str, versions: list[str], bus: PutEventsLikeBus, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLISHED_EVENT_VERSIONS", setting)
    wiring.reset()
    world = streamed_world()
    flow_declined(world)

    deliver(stream_records(stream_of(world)), lambda_context)

    expected = FLOWS["declined"][1]
    assert {v: [e.detail_type for e in got] for v, got in bus.received.items()} == {
        v: expected if v in versions else [] for v in SCHEMA_VERSIONS
    }
    assert all(len(ids) == len(versions) for ids in bus.calls)


def test_the_versions_setting_defaults_to_both_and_refuses_others() -> None:
    assert Settings().event_versions == ("1", "2")
    assert Settings.from_environ({"PUBLISHED_EVENT_VERSIONS": "2"}).event_versions == ("2",)
    for wrong in ("3", "2,1", "", "1,2,3", "v1"):
        if wrong:
            with pytest.raises(ValidationError):
                Settings.from_environ({"PUBLISHED_EVENT_VERSIONS": wrong})


def test_the_template_passes_its_versions_parameter_to_the_publisher_only() -> None:
    from local.cloudformation import load_template

    template = load_template()
    parameter = template["Parameters"]["PublishedEventVersions"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("1,2", ["1", "2", "1,2"])
    functions = {
        name: (resource["Properties"].get("Environment") or {}).get("Variables") or {}
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert functions["PublishEventsFunction"]["PUBLISHED_EVENT_VERSIONS"] == {"Ref": "PublishedEventVersions"}
    assert [n for n, env in functions.items() if "PUBLISHED_EVENT_VERSIONS" in env] == ["PublishEventsFunction"]


@pytest.mark.parametrize("refused_version", ["1", "2"])
def test_a_refused_entry_of_one_version_retries_its_change_and_loses_neither_version(
    refused_version: str, bus: PutEventsLikeBus, lambda_context: Any
) -> None:
    world = streamed_world()
    flow_completed(world)
    records = stream_records(stream_of(world))
    app = importlib.import_module("functions.publish_events.app")
    events = [e for r in records if (e := app.event_of(r)) is not None]
    refused = events[3].event_id
    bus.refuse[f"{refused}@v{refused_version}"] = 1

    results = deliver(records, lambda_context)

    assert len(results) == 2
    expected = [e.event_id for e in events]
    other = "2" if refused_version == "1" else "1"
    assert [e.event_id for e in bus.received[refused_version]] == expected  # once: refused, then retried
    # The other version went out with it the first time and again with the retry: de-duplicate per version.
    again = [e.event_id for e in bus.received[other]]
    assert sorted(set(again)) == sorted(expected)
    assert [i for i in again if again.count(i) > 1] == [refused, refused]


def test_the_local_feed_shows_the_newest_version_the_publisher_puts() -> None:
    """``make run``'s /_local/events is one consumer's rule: the newest published version, each change once."""
    from local import events_feed

    assert SCHEMA_VERSIONS[-1] == events_feed.LATEST_VERSION
    assert Settings().published_event_versions == events_feed.DEFAULT_VERSIONS
    assert [events_feed.newest_version(v) for v in (None, "1", "2", "1,2")] == ["2", "1", "2", "2"]
