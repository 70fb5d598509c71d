"""IAM as the tests read it: the grants of template.yaml per function, and the AWS calls a handler really makes.

``granted_statements``/``resource_name`` read what a function's policy allows (``tests/unit/test_template.py``);
``AwsCallRecorder`` records, while a function's handler runs, each AWS call it makes as the IAM action and the
resource it is authorised on (``tests/moto/test_iam_least_privilege.py`` compares the two).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import pytest
from botocore.client import BaseClient

# SES v2 SendEmail is authorised on the sending identity and on the configuration set (every function that
# sends names it, SES_CONFIGURATION_SET in Globals), as template.yaml's ARN patterns name them.
SES_IDENTITY = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderEmail}"
SES_CONFIGURATION_SET = (
    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/${ConsentConfigurationSet}"
)
# A transaction is authorised item by item, with the action of the single-item call.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
Grant = tuple[str, str]  # (resource as resource_name() names it, IAM action)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_name(resource: Any) -> str:
    """What a policy Resource names: a table or index (``ClaimsTable/index/GSI1``), else the ARN pattern."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        logical_id, attribute = resource["Fn::GetAtt"]
        return str(logical_id) if attribute == "Arn" else f"{logical_id}.{attribute}"
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        pattern = str(resource["Fn::Sub"])
        if pattern.startswith("arn:"):
            return pattern
        return pattern.replace("${", "").replace(".Arn}", "")
    return str(resource)


def inline_statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in as_list(function["Properties"].get("Policies", [])):
        if isinstance(policy, dict) and "Statement" in policy:
            statements.extend(as_list(policy["Statement"]))
    return statements


def role_statements(template: dict[str, Any], function: dict[str, Any]) -> list[dict[str, Any]]:
    """The inline statements of the role a function names with ``Role`` (SAM then generates none)."""
    role = function["Properties"].get("Role")
    if role is None:
        return []
    assert role == {"Fn::GetAtt": [role["Fn::GetAtt"][0], "Arn"]}, "a function's own role is a role of this stack"
    properties = template["Resources"][role["Fn::GetAtt"][0]]["Properties"]
    return [
        statement for policy in properties["Policies"] for statement in as_list(policy["PolicyDocument"]["Statement"])
    ]


def granted_statements(template: dict[str, Any], function: dict[str, Any]) -> list[dict[str, Any]]:
    """What the function may do: its inline policies, or its own role's."""
    return inline_statements(function) or role_statements(template, function)


def granted(template: dict[str, Any], function: dict[str, Any]) -> set[Grant]:
    """Every (resource, action) a function's Allow statements grant."""
    return {
        (resource_name(resource), str(action))
        for statement in granted_statements(template, function)
        if statement["Effect"] == "Allow"
        for resource in as_list(statement["Resource"])
        for action in as_list(statement["Action"])
    }


def handler_modules(template: Mapping[str, Any]) -> dict[str, str]:
    """Logical id of each function -> the module of its handler (``functions.add_customer.app``)."""
    found: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        code_uri = str(resource["Properties"]["CodeUri"]).strip("/")
        module, _, _ = str(resource["Properties"]["Handler"]).partition(".")
        found[logical_id] = f"{code_uri.replace('/', '.')}.{module}"
    return found


class AwsCallRecorder:
    """Records (function, resource, action) for every AWS call made while a function's handler runs.

    Each handler module's ``lambda_handler`` is wrapped (callers look it up at call time), and
    ``BaseClient._make_api_call``, the one door of every boto3 client (Powertools' idempotency client
    included), notes the call against the function running. Calls outside a handler are not recorded.
    """

    def __init__(self, template: dict[str, Any], table_names: Mapping[str, str]) -> None:
        self.template = template
        self.tables = {name: logical_id for logical_id, name in table_names.items()}
        self.calls: dict[str, set[Grant]] = {}
        # The client operations each function made, as its adapters name them ("dynamodb:GetItem").
        self.operations: dict[str, set[str]] = {}
        self._running: ContextVar[str | None] = ContextVar("function", default=None)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for logical_id, module_name in handler_modules(self.template).items():
            module = importlib.import_module(module_name)
            monkeypatch.setattr(module, "lambda_handler", self._wrap(logical_id, module.lambda_handler))
        original = BaseClient._make_api_call

        def make_api_call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            function = self._running.get()
            if function is not None:
                prefix = client.meta.service_model.signing_name
                self.calls.setdefault(function, set()).update(self._grants(prefix, operation, params))
                service = client.meta.service_model.service_name
                self.operations.setdefault(function, set()).add(f"{service}:{operation}")
            return original(client, operation, params)

        monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)

    def _wrap(self, logical_id: str, handler: Any) -> Any:
        def run(event: Any, context: Any) -> Any:
            token = self._running.set(logical_id)
            try:
                return handler(event, context)
            finally:
                self._running.reset(token)

        return run

    def _grants(self, prefix: str, operation: str, params: dict[str, Any]) -> Iterator[Grant]:
        if prefix == "dynamodb":
            yield from self._dynamodb(operation, params)
        elif prefix == "ses" and operation == "SendEmail":
            yield SES_IDENTITY, "ses:SendEmail"
            yield SES_CONFIGURATION_SET, "ses:SendEmail"
        elif prefix == "events" and operation == "PutEvents":
            yield "CustomersEventBus", "events:PutEvents"
        else:
            yield "?", f"{prefix}:{operation}"  # unknown to this mapping: fails the comparison, to be taught here

    def _table(self, name: str, index: str | None = None) -> str:
        table = self.tables.get(name, name)
        return f"{table}/index/{index}" if index else table

    def _dynamodb(self, operation: str, params: dict[str, Any]) -> Iterator[Grant]:
        if operation in ("BatchGetItem", "BatchWriteItem"):
            for name in params["RequestItems"]:
                yield self._table(name), f"dynamodb:{operation}"
        elif operation == "TransactWriteItems":
            for item in params["TransactItems"]:
                ((kind, body),) = item.items()
                yield self._table(body["TableName"]), f"dynamodb:{_TRANSACT_ACTIONS[kind]}"
        elif operation == "TransactGetItems":
            for item in params["TransactItems"]:
                yield self._table(item["Get"]["TableName"]), "dynamodb:GetItem"
        else:
            yield self._table(params["TableName"], params.get("IndexName")), f"dynamodb:{operation}"


def least_privilege_problems(
    template: dict[str, Any], calls: Mapping[str, set[Grant]], kept: Mapping[str, Mapping[Grant, str]]
) -> list[str]:
    """What differs between each function's grants and its recorded ``calls`` plus the ``kept`` allow-list:
    a call not granted, a grant neither called nor kept, a kept grant that is not granted or is called."""
    problems: list[str] = []
    functions = [key for key, value in template["Resources"].items() if value["Type"] == "AWS::Serverless::Function"]
    for logical_id in sorted(functions):
        allowed = granted(template, template["Resources"][logical_id])
        used = calls.get(logical_id, set())
        reasons = set(kept.get(logical_id, {}))
        problems += [
            f"{logical_id} calls {action} on {resource}, not granted" for resource, action in sorted(used - allowed)
        ]
        problems += [
            f"{logical_id} is granted {action} on {resource}, which no flow uses (remove it, or keep it in KEPT "
            "with the failure path that needs it)"
            for resource, action in sorted(allowed - used - reasons)
        ]
        problems += [
            f"KEPT names {grant} for {logical_id}, which is not granted" for grant in sorted(reasons - allowed)
        ]
        problems += [f"KEPT names {grant} for {logical_id}, which a flow uses" for grant in sorted(reasons & used)]
    return problems
