"""Claims, limit counters and uniqueness guards in DynamoDB, written in transactions."""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, assert_never

from botocore.exceptions import ClientError
from pydantic import ValidationError

from mci.adapters import dynamodb_items as items
from mci.adapters.aws import dependency, error_code, operator_problem, outcome_unknown
from mci.adapters.dynamodb_batches import batch_get, query_all
from mci.domain import claim_effects
from mci.domain.claims import Claim, ClaimState
from mci.domain.clock import isoformat
from mci.domain.errors import DependencyUnavailable
from mci.domain.metrics import NO_METRICS, BusinessMetrics, change_counts
from mci.domain.ports import (
    ClaimChange,
    ConcurrentChange,
    ConsentPageContext,
    ConsentTokenRecord,
    Holder,
    KnownCustomer,
    LimitSnapshot,
    NewClaims,
    known_identifiers,
)
from mci.domain.referrals import Referral
from mci.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

    from mci.domain.events import ClaimHead

HOLDER_PREFIX = "holder#"
CONFLICT_REASONS = frozenset({"ConditionalCheckFailed", "TransactionConflict"})
MAX_TRANSACTION_ITEMS = 100  # TransactWriteItems refuses more
THROTTLING_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})
INVALID_REASON = "ValidationError"  # DynamoDB's reason for an item it refuses (size, key type): never retried
TOKEN_LENGTH = 36  # the longest ClientRequestToken DynamoDB takes
NEW_ITEM = "attribute_not_exists(PK)"


def transaction_token(operation: str, request_id: str | None, writes: Sequence[TransactWriteItemTypeDef]) -> str:
    """The ClientRequestToken of one TransactWriteItems: a digest of the request, the operation and the items.

    botocore's own resends of the call carry it unchanged, so DynamoDB applies the transaction once (for
    10 minutes). A retry after a conflict re-reads and writes other items (the next version), so it gets
    another token, never an IdempotentParameterMismatch. A write no API request made (the sweep) has no
    request id: a random one keeps two runs writing the same items from sharing a token.
    """
    digest = hashlib.sha256()
    for part in (operation, request_id or uuid.uuid4().hex, json.dumps(writes, sort_keys=True, default=str)):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:TOKEN_LENGTH]


def _new_entry_request_id(before: Claim | None, after: Claim) -> str | None:
    """The API request that made this change: the request id of the history entry it adds, if it adds one."""
    if after.history and len(after.history) > (len(before.history) if before is not None else 0):
        return after.history[-1].request_id
    return None


def _due_text(due: datetime | None) -> str:
    return isoformat(due) if due else "none"


def _due_value(text: str) -> datetime | None:
    return None if text == "none" else datetime.fromisoformat(text)


def claim_item(claim: Claim) -> items.Item:
    """The stored form of a claim, with the index keys its state calls for."""
    values: dict[str, Any] = {
        **items.model_attributes(claim),
        "type": "claim",
        "GSI1PK": items.claims_tab_pk(claim.partner_id, claim.engagement_id, claim.state.is_terminal),
        "GSI1SK": claim.position,
    }
    due_at = claim.due_at
    if due_at is not None:
        values["due_shard"] = items.due_shard(claim.claim_id)
        values["due_at"] = isoformat(due_at)
    return {**items.claim_key(claim.claim_id), **items.serialize(values)}


def claim_from_item(item: items.Item) -> Claim:
    try:
        return Claim.model_validate(items.strip_keys(items.deserialize(item)))
    except ValidationError as error:
        raise items.UnreadableItem.of("claim", error) from None  # pydantic's message quotes the contact


def claim_head_from_item(item: items.Item) -> ClaimHead:
    """What decides a stream record's event, read from the image without validating the whole claim."""
    from mci.domain.events import ClaimHead  # only the stream publisher needs it; the other functions never import it

    requests = item.get("consent_requests", {}).get("M", {})
    return ClaimHead(ClaimState(str(item["state"]["S"])), int(requests.get("count", {}).get("N", "0")))


def limit_snapshot(
    engagement_id: str, customer_key: str, counter: dict[str, Any] | None, guard_claim_id: str | None
) -> LimitSnapshot:
    """A counter item (deserialized; None when absent) and the partner's guard, as the domain reads them."""
    counter = counter or {}
    holders = tuple(
        Holder(claim_id=name[len(HOLDER_PREFIX) :], partner_id=str(v["partner_id"]), due=_due_value(v["due"]))
        for name, v in sorted(counter.items())
        if name.startswith(HOLDER_PREFIX)
    )
    return LimitSnapshot(
        engagement_id=engagement_id,
        customer_key=customer_key,
        version=int(counter.get("version", 0)),
        holders=holders,
        partner_claim_id=guard_claim_id,
    )


def token_item(record: ConsentTokenRecord) -> items.Item:
    return {
        **items.token_key(record.token_hash),
        **items.serialize(
            {
                "type": "consent_token",
                "claim_id": record.claim_id,
                "partner_id": record.partner_id,
                "expires_at": isoformat(record.expires_at),
                "expires_at_epoch": int(record.expires_at.timestamp()) + 86_400,
                "page": {
                    "language": record.page.language,
                    "partner_name": record.page.partner_name,
                    "engagement_name": record.page.engagement_name,
                    "customer_name": record.page.customer_name,
                    "submission_window_days": record.page.submission_window_days,
                },
            }
        ),
    }


def referral_item(referral: Referral) -> items.Item:
    """``type`` names the item kind in this table, so the referral's own type is kept as referral_type."""
    values = items.model_attributes(referral)
    values["referral_type"] = values.pop("type")
    return {**items.referral_key(referral.referral_id), **items.serialize({**values, "type": "referral"})}


def referral_from_item(item: items.Item) -> Referral:
    values = items.strip_keys(items.deserialize(item))
    values["type"] = values.pop("referral_type")
    return Referral.model_validate(values)


def known_customer_item(known: KnownCustomer) -> items.Item:
    return {
        **items.known_customer_key(known.partner_id, known.customer_id),
        **items.serialize(
            {
                "type": "known_customer",
                "customer_id": known.customer_id,
                "identifier_type": known.identifier_type,
                "identifier_value": known.identifier_value,
                "name": known.name,
                "customer_contact": known.customer_contact,
                "partner_contact": known.partner_contact,
                "last_claim_id": known.last_claim_id,
                "known_since": isoformat(known.known_since),
                "updated_at": isoformat(known.updated_at),
            }
        ),
    }


def known_customer_from_item(item: items.Item) -> KnownCustomer:
    values = items.deserialize(item)
    return KnownCustomer(
        partner_id=str(values["PK"]).removeprefix("PARTNER#"),
        customer_id=str(values["customer_id"]),
        identifier_type=str(values["identifier_type"]),
        identifier_value=str(values["identifier_value"]),
        name=str(values["name"]),
        customer_contact=dict(values["customer_contact"]),
        partner_contact=dict(values["partner_contact"]),
        last_claim_id=str(values["last_claim_id"]),
        known_since=datetime.fromisoformat(str(values["known_since"])),
        updated_at=datetime.fromisoformat(str(values["updated_at"])),
        identifiers=known_identifiers(str(values["customer_id"]), values.get("identifiers") or ()),
    )


def _holder_value(holder: Holder) -> AttributeValueTypeDef:
    """A counted claim as the counter stores it, under ``holder#<claim id>``."""
    return {"M": {"partner_id": {"S": holder.partner_id}, "due": {"S": _due_text(holder.due)}}}


def _counted_holder_update(
    table: str, counter: claim_effects.Counter, claim_id: str, expression: str, values: dict[str, Any]
) -> TransactWriteItemTypeDef:
    """An update of a claim the counter holds, refused when it does not hold it; the counter's version moves."""
    return {
        "Update": {
            "TableName": table,
            "Key": items.counter_key(counter.engagement_id, counter.customer_key),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(#holder)",
            "ExpressionAttributeNames": {"#holder": HOLDER_PREFIX + claim_id},
            "ExpressionAttributeValues": {":one": {"N": "1"}, **values},
        }
    }


def _count_holder(table: str, effect: claim_effects.CountHolder) -> TransactWriteItemTypeDef:
    holder, counter = effect.holder, effect.counter
    names = {"#new": HOLDER_PREFIX + holder.claim_id}
    names.update({f"#old{i}": HOLDER_PREFIX + claim_id for i, claim_id in enumerate(effect.drop)})
    values: dict[str, Any] = {
        ":zero": {"N": "0"},
        ":one": {"N": "1"},
        ":delta": {"N": str(1 - len(effect.drop))},
        ":holder": _holder_value(holder),
    }
    expression = (
        "SET active_count = if_not_exists(active_count, :zero) + :delta, "
        "version = if_not_exists(version, :zero) + :one, #new = :holder"
    )
    if effect.drop:
        expression += " REMOVE " + ", ".join(f"#old{i}" for i in range(len(effect.drop)))
    if effect.read_version == 0:
        condition = NEW_ITEM
    else:
        condition = "version = :read"
        values[":read"] = {"N": str(effect.read_version)}
    return {
        "Update": {
            "TableName": table,
            "Key": items.counter_key(counter.engagement_id, counter.customer_key),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def _guard_put(table: str, effect: claim_effects.PutGuard) -> TransactWriteItemTypeDef:
    guard = effect.guard
    put: dict[str, Any] = {
        "TableName": table,
        "Item": {
            **items.guard_key(guard.engagement_id, guard.customer_key, guard.partner_id),
            **items.serialize({"type": "guard", "claim_id": effect.claim_id, "due": _due_text(effect.due)}),
        },
    }
    if effect.replaces is None:
        put["ConditionExpression"] = NEW_ITEM
    else:
        put["ConditionExpression"] = "claim_id = :stale"
        put["ExpressionAttributeValues"] = {":stale": {"S": effect.replaces}}
    return {"Put": put}  # type: ignore[typeddict-item]


def _known_customer_upsert(table: str, known: KnownCustomer) -> TransactWriteItemTypeDef:
    """Every attribute set, and the identifiers added to the stored set (a known customer keeps them all)."""
    item = known_customer_item(known)
    fields = {name: value for name, value in item.items() if name not in ("PK", "SK")}
    names = {f"#a{i}": name for i, name in enumerate(fields)}
    values = {f":a{i}": value for i, value in enumerate(fields.values())}
    ids = sorted({known.customer_id, *known.identifiers})
    return {
        "Update": {
            "TableName": table,
            "Key": {"PK": item["PK"], "SK": item["SK"]},
            "UpdateExpression": "SET " + ", ".join(f"{n} = :a{i}" for i, n in enumerate(names)) + " ADD #ids :ids",
            "ExpressionAttributeNames": {**names, "#ids": "identifiers"},
            "ExpressionAttributeValues": {**values, ":ids": {"SS": ids}},
        }
    }


class DynamoDBClaimRepository:
    # The client operations it calls (mci.snapstart primes each; tests/moto/test_iam_least_privilege.py checks).
    AWS_CALLS: ClassVar[tuple[str, ...]] = (
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:TransactWriteItems",
    )

    def __init__(self, client: DynamoDBClient, table_name: str, metrics: BusinessMetrics = NO_METRICS) -> None:
        self._client = client
        self._table = table_name
        self._metrics = metrics  # counts each change once it has committed (mci.domain.metrics)

    def get_claim(self, claim_id: str) -> Claim | None:
        with dependency("DynamoDB"):
            found = self._client.get_item(TableName=self._table, Key=items.claim_key(claim_id), ConsistentRead=True)
        item = found.get("Item")
        return claim_from_item(item) if item else None

    def get_claims(self, claim_ids: Sequence[str]) -> dict[str, Claim]:
        with dependency("DynamoDB"):
            found = batch_get(self._client, self._table, [items.claim_key(c) for c in set(claim_ids)], consistent=True)
        claims = (claim_from_item(i) for i in found)
        return {c.claim_id: c for c in claims}

    def read_limits(
        self, partner_id: str, customer_key: str, engagement_ids: Sequence[str]
    ) -> dict[str, LimitSnapshot]:
        keys: list[items.Item] = []
        for engagement_id in engagement_ids:
            keys += [
                items.counter_key(engagement_id, customer_key),
                items.guard_key(engagement_id, customer_key, partner_id),
            ]
        with dependency("DynamoDB"):
            found = batch_get(self._client, self._table, keys, consistent=True)
        counters: dict[str, dict[str, Any]] = {}
        guards: dict[str, str] = {}
        for raw in found:
            values = items.deserialize(raw)
            engagement_id = str(values["PK"]).split("#", 2)[1]
            if values["SK"] == "COUNT":
                counters[engagement_id] = values
            else:
                guards[engagement_id] = str(values["claim_id"])
        return {
            engagement_id: limit_snapshot(
                engagement_id, customer_key, counters.get(engagement_id), guards.get(engagement_id)
            )
            for engagement_id in engagement_ids
        }

    def create(self, new: NewClaims) -> None:
        if 3 * len(new.claims) + 3 * len(new.expire) > MAX_TRANSACTION_ITEMS:
            self._expire_first(new.expire)
            raise ConcurrentChange("too many overdue claims for one transaction: expired them first; re-read")
        writes = [self._write(effect) for effect in claim_effects.creation_effects(new)]
        request_id = _new_entry_request_id(None, new.claims[0]) if new.claims else None
        self._transact(writes, transaction_token("create", request_id, writes))

    def apply(self, change: ClaimChange) -> None:
        writes = [self._write(effect) for effect in claim_effects.change_effects(change)]
        self._transact(writes, transaction_token("apply", _new_entry_request_id(change.before, change.after), writes))
        self._metrics.count(change_counts(change))

    def _write(self, effect: claim_effects.Effect) -> TransactWriteItemTypeDef:
        """One effect as one transaction item, with the condition the effect names."""
        table = self._table
        match effect:
            case claim_effects.WriteClaim(claim=claim, read_version=None):
                return {"Put": {"TableName": table, "Item": claim_item(claim), "ConditionExpression": NEW_ITEM}}
            case claim_effects.WriteClaim(claim=claim, read_version=read):
                return {
                    "Put": {
                        "TableName": table,
                        "Item": claim_item(claim),
                        "ConditionExpression": "version = :read",
                        "ExpressionAttributeValues": {":read": {"N": str(read)}},
                    }
                }
            case claim_effects.CountHolder():
                return _count_holder(table, effect)
            case claim_effects.ReleaseHolder(counter=counter, claim_id=claim_id):
                release = "ADD active_count :minus, version :one REMOVE #holder"
                return _counted_holder_update(table, counter, claim_id, release, {":minus": {"N": "-1"}})
            case claim_effects.MoveHolder(counter=counter, holder=holder):
                move = "SET #holder = :holder ADD version :one"
                return _counted_holder_update(table, counter, holder.claim_id, move, {":holder": _holder_value(holder)})
            case claim_effects.PutGuard():
                return _guard_put(table, effect)
            case claim_effects.DeleteGuard(guard=guard, claim_id=claim_id):
                return {
                    "Delete": {
                        "TableName": table,
                        "Key": items.guard_key(guard.engagement_id, guard.customer_key, guard.partner_id),
                        "ConditionExpression": "claim_id = :claim",
                        "ExpressionAttributeValues": {":claim": {"S": claim_id}},
                    }
                }
            case claim_effects.CloseReferral(referral_id=referral_id, state=state, at=at):
                return {
                    "Update": {
                        "TableName": table,
                        "Key": items.referral_key(referral_id),
                        "UpdateExpression": "SET #status = :closed, closed_with_state = :state, updated_at = :at",
                        "ConditionExpression": "attribute_exists(PK)",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {
                            ":closed": {"S": "closed"},
                            ":state": {"S": state.value},
                            ":at": {"S": isoformat(at)},
                        },
                    }
                }
            case claim_effects.PutReferral(referral=referral):
                return {"Put": {"TableName": table, "Item": referral_item(referral)}}
            case claim_effects.DeleteToken(token_hash=token_hash):
                return {"Delete": {"TableName": table, "Key": items.token_key(token_hash)}}
            case claim_effects.PutToken(record=record):
                return {"Put": {"TableName": table, "Item": token_item(record), "ConditionExpression": NEW_ITEM}}
            case claim_effects.UpsertKnownCustomer(known=known):
                return _known_customer_upsert(table, known)
            case _:
                assert_never(effect)

    def get_referral(self, referral_id: str) -> Referral | None:
        with dependency("DynamoDB"):
            found = self._client.get_item(TableName=self._table, Key=items.referral_key(referral_id))
        item = found.get("Item")
        return referral_from_item(item) if item else None

    def get_token(self, token_hash: str) -> ConsentTokenRecord | None:
        with dependency("DynamoDB"):
            found = self._client.get_item(TableName=self._table, Key=items.token_key(token_hash), ConsistentRead=True)
        item = found.get("Item")
        if not item:
            return None
        values = items.deserialize(item)
        page = values["page"]
        return ConsentTokenRecord(
            token_hash=token_hash,
            claim_id=str(values["claim_id"]),
            partner_id=str(values["partner_id"]),
            expires_at=datetime.fromisoformat(str(values["expires_at"])),
            page=ConsentPageContext(
                language=str(page["language"]),
                partner_name=str(page["partner_name"]),
                engagement_name=str(page["engagement_name"]),
                customer_name=str(page["customer_name"]),
                submission_window_days=int(page["submission_window_days"]),
            ),
        )

    def list_known_customers(self, partner_id: str) -> list[KnownCustomer]:
        with dependency("DynamoDB"):
            found = query_all(
                self._client,
                TableName=self._table,
                KeyConditionExpression="PK = :pk AND begins_with(SK, :known)",
                ExpressionAttributeValues={":pk": {"S": f"PARTNER#{partner_id}"}, ":known": {"S": "KNOWN#"}},
            )
        return [known_customer_from_item(i) for i in found]

    def get_known_customer(self, partner_id: str, customer_id: str) -> KnownCustomer | None:
        with dependency("DynamoDB"):
            found = self._client.get_item(TableName=self._table, Key=items.known_customer_key(partner_id, customer_id))
        item = found.get("Item")
        return known_customer_from_item(item) if item else None

    def partner_claims(
        self, partner_id: str, engagement_id: str, *, terminal: bool, before: str | None, limit: int
    ) -> tuple[list[Claim], bool]:
        """One page of the partner's claims in the engagement, newest first, strictly before ``before``."""
        values: dict[str, Any] = {":pk": {"S": items.claims_tab_pk(partner_id, engagement_id, terminal)}}
        condition = "GSI1PK = :pk"
        if before is not None:
            condition += " AND GSI1SK < :before"
            values[":before"] = {"S": before}
        with dependency("DynamoDB"):
            page = self._client.query(
                TableName=self._table,
                IndexName="GSI1",
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
                Limit=limit,
            )
        return [claim_from_item(i) for i in page.get("Items", [])], "LastEvaluatedKey" in page

    def due_claims(self, now: datetime, limit: int) -> list[Claim]:
        """Query each shard of the sparse DueIndex for due_at <= now; the index projects whole claims."""
        found: list[Claim] = []
        for shard in range(items.DUE_SHARDS):
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": "DueIndex",
                "KeyConditionExpression": "due_shard = :shard AND due_at <= :now",
                "ExpressionAttributeValues": {":shard": {"S": f"DUE#{shard}"}, ":now": {"S": isoformat(now)}},
                "Limit": max(1, min(limit - len(found), 1000)),
            }
            while len(found) < limit:
                with dependency("DynamoDB"):
                    page = self._client.query(**kwargs)
                found.extend(claim_from_item(i) for i in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
                kwargs["Limit"] = max(1, min(limit - len(found), 1000))
            if len(found) >= limit:
                break
        return found

    def _expire_first(self, expiring: Sequence[Claim]) -> None:
        """Expire overdue claims one transaction each, as the sweep does (rule 17 holds either way)."""
        stored = self.get_claims([c.claim_id for c in expiring])
        for after in expiring:
            before = stored.get(after.claim_id)
            if before is not None and before.version == after.version - 1:
                with contextlib.suppress(ConcurrentChange):
                    self.apply(ClaimChange(before=before, after=after))

    def _transact(self, writes: list[TransactWriteItemTypeDef], token: str) -> None:
        try:
            with dependency("DynamoDB"):
                self._client.transact_write_items(TransactItems=writes, ClientRequestToken=token)
        except ClientError as error:
            translated = _translate_cancellation(error)
            # The SDK retries a request whose answer was lost; the retry then trips on the first attempt's write.
            if isinstance(translated, ConcurrentChange) and self._landed(writes):
                return
            raise translated from error
        except DependencyUnavailable as error:
            if outcome_unknown(error) and self._landed(writes):
                return  # applied; only the answer was lost
            raise

    def _landed(self, writes: list[TransactWriteItemTypeDef]) -> bool:
        """Whether this transaction was applied: its claim is stored exactly as it wrote it. A claim item is
        unique to the write that makes it (a new id, or the next version with its own history entry)."""
        put = next((w["Put"] for w in writes if "Put" in w and w["Put"]["Item"].get("SK") == {"S": "CLAIM"}), None)
        if put is None:
            return False
        key = {"PK": put["Item"]["PK"], "SK": put["Item"]["SK"]}
        try:
            with dependency("DynamoDB"):
                stored = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        except DependencyUnavailable:
            return False
        return stored is not None and items.deserialize(stored) == items.deserialize(put["Item"])


def _translate_cancellation(error: ClientError) -> Exception:
    """A cancelled transaction: a concurrent writer means re-read; throttling means retry later."""
    code = error_code(error)
    reasons = {str(r.get("Code")) for r in error.response.get("CancellationReasons", [])}
    if INVALID_REASON in reasons:  # first: beside a failed condition, writing it again is refused again
        # An Update that would grow a stored item past 400 KB (a Put too large, or an operand of the wrong type, is a
        # ValidationException before the transaction runs): a request the service built wrong or an item it did not
        # expect, never the client's (every field a client sends is bounded; no claim nears the limit). An operator's
        # problem, as a ValidationException is; the log names each refused item by position and reason, never its data.
        refused = [
            {"item": n, "code": str(r.get("Code")), "message": str(r.get("Message", ""))}
            for n, r in enumerate(error.response.get("CancellationReasons", []))
            if r.get("Code") not in (None, "None")
        ]
        logger.error("transaction refused", extra={"reasons": refused})
        return operator_problem("DynamoDB", f"{code}: {INVALID_REASON}")
    if code == "TransactionConflictException" or reasons & CONFLICT_REASONS:
        return ConcurrentChange(f"{code}: {sorted(reasons)}")
    if code == "IdempotentParameterMismatchException":
        # The token was used for other items within 10 minutes: re-reading writes other items, another token.
        return ConcurrentChange(code)
    if code == "TransactionInProgressException":
        return DependencyUnavailable("DynamoDB is still applying this change; retry shortly.", retry_after_seconds=1)
    if code == "TransactionCanceledException" and reasons & THROTTLING_REASONS:
        return DependencyUnavailable("DynamoDB is busy; retry shortly.", retry_after_seconds=1)
    return error
