"""template.yaml is the one definition of tables, routes and permissions; check it says what SPEC says."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.cloudformation import (
    TEMPLATE_PATH,
    Route,
    create_tables,
    function_environment,
    load_template,
    routes,
    table_definitions,
)

ROOT = TEMPLATE_PATH.parent
REGION = "us-east-1"

# SPEC §4 routes in scope of this template, and the function that serves each.
SPEC_ROUTES = {
    ("GET", "/engagements"): "ListEngagementsFunction",
    ("GET", "/locations"): "ListLocationsFunction",
    ("POST", "/eligibility-checks"): "CheckEligibilityFunction",
    ("POST", "/payment-quotes"): "QuotePaymentFunction",
    ("POST", "/customers"): "AddCustomerFunction",
    ("POST", "/ops/reference-data"): "LoadReferenceDataFunction",
}

CLAIMS = "ClaimsTable"
GSI1 = "ClaimsTable/index/GSI1"
IDEMPOTENCY = "IdempotencyTable"

# Least privilege: exactly these actions on exactly these resources, nothing else.
EXPECTED_PERMISSIONS: dict[str, dict[str, set[str]]] = {
    "ListEngagementsFunction": {
        CLAIMS: {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:BatchGetItem"},
        GSI1: {"dynamodb:Query"},
    },
    "ListLocationsFunction": {GSI1: {"dynamodb:Query"}},
    "CheckEligibilityFunction": {
        CLAIMS: {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"},
    },
    "QuotePaymentFunction": {CLAIMS: {"dynamodb:GetItem", "dynamodb:BatchGetItem"}},
    "AddCustomerFunction": {
        CLAIMS: {
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
        },
        IDEMPOTENCY: {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
    },
    "LoadReferenceDataFunction": {
        CLAIMS: {"dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:GetItem"},
    },
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources_of_type(template, "AWS::Serverless::Function")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_name(resource: Any) -> str:
    """The table (or index) a policy Resource names, e.g. ``ClaimsTable/index/GSI1``."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        logical_id, attribute = resource["Fn::GetAtt"]
        assert attribute == "Arn"
        return str(logical_id)
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        return str(resource["Fn::Sub"]).replace("${", "").replace(".Arn}", "")
    return str(resource)


def inline_statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in as_list(function["Properties"].get("Policies", [])):
        if isinstance(policy, dict) and "Statement" in policy:
            statements.extend(as_list(policy["Statement"]))
    return statements


# ---------------------------------------------------------------- tables


def test_tables_are_created_from_the_template(dynamodb: Any) -> None:
    names = create_tables(dynamodb)

    assert names == {"ClaimsTable": "ClaimsTable", "IdempotencyTable": "IdempotencyTable"}
    claims = dynamodb.describe_table(TableName="ClaimsTable")["Table"]
    assert claims["TableStatus"] == "ACTIVE"
    assert claims["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    indexes = {index["IndexName"]: index for index in claims["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"GSI1", "DueIndex"}
    assert indexes["GSI1"]["KeySchema"] == [
        {"AttributeName": "GSI1PK", "KeyType": "HASH"},
        {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
    ]
    assert indexes["GSI1"]["Projection"] == {"ProjectionType": "ALL"}
    assert indexes["DueIndex"]["KeySchema"] == [
        {"AttributeName": "due_shard", "KeyType": "HASH"},
        {"AttributeName": "due_at", "KeyType": "RANGE"},
    ]
    assert indexes["DueIndex"]["Projection"]["ProjectionType"] == "INCLUDE"
    assert set(indexes["DueIndex"]["Projection"]["NonKeyAttributes"]) == {"state", "partner_id"}
    assert claims["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert claims["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    idempotency = dynamodb.describe_table(TableName="IdempotencyTable")["Table"]
    assert idempotency["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]

    claims_ttl = dynamodb.describe_time_to_live(TableName="ClaimsTable")["TimeToLiveDescription"]
    assert claims_ttl["AttributeName"] == "expires_at_epoch"
    idempotency_ttl = dynamodb.describe_time_to_live(TableName="IdempotencyTable")["TimeToLiveDescription"]
    assert idempotency_ttl["AttributeName"] == "expiration"


def test_create_tables_takes_other_names_and_keeps_existing_tables(dynamodb: Any) -> None:
    names = {"ClaimsTable": "test-claims", "IdempotencyTable": "test-idempotency"}

    assert create_tables(dynamodb, names=names) == names
    assert create_tables(dynamodb, names=names) == names

    assert set(dynamodb.list_tables()["TableNames"]) == {"test-claims", "test-idempotency"}


def test_table_definitions_keep_only_what_create_table_accepts(template: dict[str, Any]) -> None:
    definitions = table_definitions(template)

    assert set(definitions) == {"ClaimsTable", "IdempotencyTable"}
    allowed = {
        "TableName",
        "KeySchema",
        "AttributeDefinitions",
        "GlobalSecondaryIndexes",
        "BillingMode",
        "StreamSpecification",
    }
    for definition in definitions.values():
        assert set(definition) <= allowed
        assert definition["BillingMode"] == "PAY_PER_REQUEST"
    assert definitions["ClaimsTable"]["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }


def test_tables_are_protected(template: dict[str, Any]) -> None:
    tables = resources_of_type(template, "AWS::DynamoDB::Table")

    assert set(tables) == {"ClaimsTable", "IdempotencyTable"}
    for table in tables.values():
        properties = table["Properties"]
        assert table["DeletionPolicy"] == "Retain"
        assert table["UpdateReplacePolicy"] == "Retain"
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert properties["DeletionProtectionEnabled"] is True
        assert properties["SSESpecification"] == {"SSEEnabled": True}
        assert properties["TimeToLiveSpecification"]["Enabled"] is True


# ---------------------------------------------------------------- functions


def test_globals_follow_the_workshop_layout(template: dict[str, Any]) -> None:
    function_globals = template["Globals"]["Function"]

    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    assert function_globals["Layers"] == [{"Ref": "DependenciesLayer"}, {"Ref": "SharedLayer"}]
    variables = function_globals["Environment"]["Variables"]
    assert variables["TABLE_NAME"] == {"Ref": "ClaimsTable"}
    assert variables["IDEMPOTENCY_TABLE_NAME"] == {"Ref": "IdempotencyTable"}
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE"} <= set(
        variables
    )


def test_layers_hold_dependencies_and_the_shared_package(template: dict[str, Any]) -> None:
    layers = resources_of_type(template, "AWS::Serverless::LayerVersion")

    assert layers["DependenciesLayer"]["Properties"]["ContentUri"] == "layers/dependencies/"
    assert layers["SharedLayer"]["Properties"]["ContentUri"] == "shared/"
    assert (ROOT / "layers/dependencies/requirements.txt").is_file()
    assert (ROOT / "shared/mci/__init__.py").is_file()
    for layer in layers.values():
        assert layer["Metadata"]["BuildMethod"] == "python3.13"


def test_every_function_has_a_log_group_with_retention(template: dict[str, Any]) -> None:
    log_groups = resources_of_type(template, "AWS::Logs::LogGroup")
    by_name = {
        str(group["Properties"]["LogGroupName"].get("Fn::Sub")): group for group in log_groups.values()
    }

    for logical_id in functions(template):
        group = by_name.get(f"/aws/lambda/${{{logical_id}}}")
        assert group is not None, f"{logical_id} has no explicit log group"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_function_has_a_handler_on_disk(template: dict[str, Any]) -> None:
    for logical_id, function in functions(template).items():
        properties = function["Properties"]
        assert properties["Handler"] == "app.lambda_handler", logical_id
        app = ROOT / properties["CodeUri"] / "app.py"
        assert app.is_file(), f"{logical_id}: {app} is missing"
        module = ast.parse(app.read_text(encoding="utf-8"))
        defined = {node.name for node in module.body if isinstance(node, ast.FunctionDef)} | {
            target.id
            for node in module.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert "lambda_handler" in defined, f"{app} defines no lambda_handler"


def test_inline_policies_are_least_privilege(template: dict[str, Any]) -> None:
    for logical_id, function in functions(template).items():
        statements = inline_statements(function)
        assert statements, f"{logical_id} has no inline policy"
        granted: dict[str, set[str]] = {}
        for statement in statements:
            assert statement["Effect"] == "Allow"
            for resource in as_list(statement["Resource"]):
                assert "*" not in resource_name(resource), f"{logical_id} grants on {resource}"
                granted.setdefault(resource_name(resource), set()).update(as_list(statement["Action"]))
        assert granted == EXPECTED_PERMISSIONS[logical_id], logical_id


def test_no_function_may_scan(template: dict[str, Any]) -> None:
    for logical_id, function in functions(template).items():
        for statement in inline_statements(function):
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{logical_id} grants {action}"
                assert not action.endswith("Scan"), f"{logical_id} grants {action}"


# ---------------------------------------------------------------- API


def test_every_spec_route_maps_to_exactly_one_function(template: dict[str, Any]) -> None:
    served: dict[tuple[str, str], list[str]] = {}
    for logical_id, function in functions(template).items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                key = (event["Properties"]["Method"], event["Properties"]["Path"])
                served.setdefault(key, []).append(logical_id)
                assert event["Properties"]["ApiId"] == {"Ref": "HttpApi"}
                throttling = event["Properties"]["RouteSettings"]
                assert throttling["ThrottlingBurstLimit"] > 0
                assert throttling["ThrottlingRateLimit"] > 0

    assert served == {key: [logical_id] for key, logical_id in SPEC_ROUTES.items()}


def test_routes_reads_every_http_api_event(template: dict[str, Any]) -> None:
    found = routes(template)

    assert {(route.method, route.path): route.function for route in found} == SPEC_ROUTES
    assert len(found) == len(SPEC_ROUTES)
    add_customer = next(route for route in found if route.path == "/customers")
    assert add_customer == Route(
        method="POST",
        path="/customers",
        function="AddCustomerFunction",
        code_uri="functions/add_customer/",
        handler="app.lambda_handler",
        authorized=True,
    )
    assert all(route.authorized for route in found)


def test_http_api_authorises_with_the_partner_jwt(template: dict[str, Any]) -> None:
    api = template["Resources"]["HttpApi"]["Properties"]
    auth = api["Auth"]
    authorizer = auth["Authorizers"][auth["DefaultAuthorizer"]]

    assert authorizer["IdentitySource"] == "$request.header.Authorization"
    assert authorizer["JwtConfiguration"] == {
        "issuer": {"Ref": "JwtIssuer"},
        "audience": {"Ref": "JwtAudience"},
    }
    assert api["StageName"] == "$default"
    assert "CorsConfiguration" not in api
    assert api["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    assert api["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0


def test_routes_honour_an_explicit_none_authorizer() -> None:
    template = {
        "Resources": {
            "Api": {"Type": "AWS::Serverless::HttpApi", "Properties": {}},
            "Page": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "functions/page/",
                    "Events": {
                        "Open": {
                            "Type": "HttpApi",
                            "Properties": {
                                "ApiId": {"Ref": "Api"},
                                "Method": "get",
                                "Path": "/page",
                                "Auth": {"Authorizer": "NONE"},
                            },
                        },
                        "Queue": {"Type": "SQS", "Properties": {}},
                    },
                },
            },
        },
        "Globals": {"Function": {"Handler": "app.handler"}},
    }

    assert routes(template) == [
        Route("GET", "/page", "Page", "functions/page/", "app.handler", authorized=False)
    ]


# ---------------------------------------------------------------- loader and environment


def test_function_environment_resolves_tables_and_parameter_defaults(template: dict[str, Any]) -> None:
    environment = function_environment(template, "AddCustomerFunction")

    assert environment["TABLE_NAME"] == "ClaimsTable"
    assert environment["IDEMPOTENCY_TABLE_NAME"] == "IdempotencyTable"
    assert environment["STAGE"] == "dev"
    assert environment["PUBLIC_BASE_URL"] == ""
    assert environment["POWERTOOLS_SERVICE_NAME"] == "mci-customers"

    renamed = function_environment(template, "AddCustomerFunction", names={"ClaimsTable": "local-claims"})
    assert renamed["TABLE_NAME"] == "local-claims"
    with pytest.raises(KeyError):
        function_environment(template, "NoSuchFunction")


def test_function_environment_resolves_sub_and_function_overrides() -> None:
    template = {
        "Parameters": {"Stage": {"Default": "dev"}, "Count": {"Default": 3}},
        "Globals": {"Function": {"Environment": {"Variables": {"A": "global", "B": "global"}}}},
        "Resources": {
            "Bus": {"Type": "AWS::Events::EventBus"},
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Environment": {
                        "Variables": {
                            "B": {"Fn::Sub": "mci-${Stage}-${Bus}-${Bus.Arn}-${AWS::Region}"},
                            "C": {"Ref": "Count"},
                            "D": True,
                            "E": {"Fn::GetAtt": ["Bus", "Arn"]},
                        }
                    }
                },
            },
        },
    }

    assert function_environment(template, "Fn") == {
        "A": "global",
        "B": "mci-dev-Bus--",
        "C": "3",
        "D": "true",
        "E": "",
    }


def test_load_template_understands_short_tags(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "AWSTemplateFormatVersion: 2010-09-09\n"
        "Conditions:\n"
        "  IsProd: !Equals [!Ref Stage, prod]\n"
        "Outputs:\n"
        "  Arn:\n"
        "    Value: !GetAtt Table.Arn\n"
        "  Name:\n"
        "    Value: !If [IsProd, !Sub 'x-${Stage}', !Join ['', [a, b]]]\n"
        "  Listed:\n"
        "    Value: !GetAtt [Table, StreamArn]\n"
        "  Cond:\n"
        "    Value: !Condition IsProd\n"
        "  Mapped:\n"
        "    Value: !Sub\n"
        "      - '${A}'\n"
        "      - {A: !Ref B}\n",
        encoding="utf-8",
    )

    loaded = load_template(path)

    assert loaded["AWSTemplateFormatVersion"] == "2010-09-09"
    assert loaded["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    outputs = loaded["Outputs"]
    assert outputs["Arn"]["Value"] == {"Fn::GetAtt": ["Table", "Arn"]}
    assert outputs["Name"]["Value"] == {
        "Fn::If": ["IsProd", {"Fn::Sub": "x-${Stage}"}, {"Fn::Join": ["", ["a", "b"]]}]
    }
    assert outputs["Listed"]["Value"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert outputs["Cond"]["Value"] == {"Condition": "IsProd"}
    assert outputs["Mapped"]["Value"] == {"Fn::Sub": ["${A}", {"A": {"Ref": "B"}}]}


def test_load_template_refuses_a_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("- just a list\n", encoding="utf-8")

    with pytest.raises(ValueError, match="not a CloudFormation template"):
        load_template(path)


def test_outputs_name_the_api_and_tables(template: dict[str, Any]) -> None:
    assert set(template["Outputs"]) >= {"ApiUrl", "ClaimsTableName", "IdempotencyTableName"}
