"""Keys and attribute-value conversion for the single table (docs/data-model.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from pydantic import BaseModel, ValidationError

from mci.observability import refused_fields

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

Item = dict[str, "AttributeValueTypeDef"]

KEY_ATTRIBUTES = frozenset({"PK", "SK", "type", "GSI1PK", "GSI1SK", "due_shard", "due_at", "expires_at_epoch"})
DUE_SHARDS = 8


class UnreadableItem(ValueError):
    """A stored item this code cannot read (written before a rule changed its shape, or by hand). Its message
    names the fields and what is wrong with each, never their values (pydantic's quotes them): it reaches the
    logs, and the Lambda runtime prints it when a handler raises. A ``ValueError``, as pydantic's is: the sweep
    and the publisher pass such an item over as poison."""

    @classmethod
    def of(cls, kind: str, error: ValidationError) -> UnreadableItem:
        return cls(f"a stored {kind} this code cannot read: {refused_fields(error)}")


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def engagement_key(engagement_id: str) -> Item:
    return {"PK": {"S": "REF#ENGAGEMENT"}, "SK": {"S": engagement_id}}


def location_key(location_id: str) -> Item:
    return {"PK": {"S": f"LOC#{location_id}"}, "SK": {"S": "LOCATION"}}


def partner_locations_pk(partner_id: str) -> str:
    return f"PARTNER#{partner_id}#LOCATIONS"


def customer_key(customer_key_text: str) -> Item:
    return {"PK": {"S": f"CUST#{customer_key_text}"}, "SK": {"S": "CUSTOMER"}}


def domain_key(domain: str) -> Item:
    return {"PK": {"S": f"DOMAIN#{domain}"}, "SK": {"S": "DOMAIN"}}


def claim_key(claim_id: str) -> Item:
    return {"PK": {"S": f"CLAIM#{claim_id}"}, "SK": {"S": "CLAIM"}}


def token_key(token_hash: str) -> Item:
    return {"PK": {"S": f"TOKEN#{token_hash}"}, "SK": {"S": "TOKEN"}}


def referral_key(referral_id: str) -> Item:
    return {"PK": {"S": f"REFERRAL#{referral_id}"}, "SK": {"S": "REFERRAL"}}


def known_customer_key(partner_id: str, customer_id: str) -> Item:
    return {"PK": {"S": f"PARTNER#{partner_id}"}, "SK": {"S": f"KNOWN#{customer_id}"}}


def limit_pk(engagement_id: str, customer_key_text: str) -> str:
    return f"LIMIT#{engagement_id}#{customer_key_text}"


def counter_key(engagement_id: str, customer_key_text: str) -> Item:
    return {"PK": {"S": limit_pk(engagement_id, customer_key_text)}, "SK": {"S": "COUNT"}}


def guard_key(engagement_id: str, customer_key_text: str, partner_id: str) -> Item:
    return {"PK": {"S": limit_pk(engagement_id, customer_key_text)}, "SK": {"S": f"PARTNER#{partner_id}"}}


def claims_tab_pk(partner_id: str, engagement_id: str, terminal: bool) -> str:
    return f"PARTNER#{partner_id}#ENG#{engagement_id}#{'DONE' if terminal else 'ACTIVE'}"


def due_shard(claim_id: str) -> str:
    digest = hashlib.sha256(claim_id.encode()).digest()
    return f"DUE#{digest[0] % DUE_SHARDS}"


def serialize(values: Mapping[str, Any]) -> Item:
    return {name: _serializer.serialize(value) for name, value in values.items() if value is not None}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def model_attributes(model: BaseModel) -> dict[str, Any]:
    """A model as DynamoDB-ready values: JSON types, with numbers as exact decimals."""
    data: dict[str, Any] = json.loads(model.model_dump_json(by_alias=True), parse_float=Decimal)
    return data


def strip_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if name not in KEY_ATTRIBUTES}
