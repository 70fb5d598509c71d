"""template.yaml is the one definition of tables, routes and permissions; check it says what SPEC says."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws
from pydantic import ValidationError

from functions import table as function_table
from functions.template import COMMAND, render, scalar
from local.cloudformation import (
    TEMPLATE_PATH,
    Route,
    create_tables,
    function_environment,
    load_template,
    local_secret,
    routes,
    table_definitions,
)
from mci.settings import Settings
from tests.support.iam import SES_CONFIGURATION_SET, SES_IDENTITY, as_list, granted_statements, resource_name

ROOT = TEMPLATE_PATH.parent
REGION = "us-east-1"

# SPEC §4 routes (GET /attention-items: issue 14): the contract. The table (functions/table.py) must serve exactly
# these; which function serves each, and who may call it, is the table's and nowhere else.
SPEC_ROUTES = {
    ("GET", "/engagements"),
    ("GET", "/locations"),
    ("POST", "/eligibility-checks"),
    ("POST", "/payment-quotes"),
    ("POST", "/customers"),
    ("GET", "/known-customers"),
    ("POST", "/known-customers/{customer_id}/claims"),
    ("GET", "/engagements/{engagement_id}/customers"),
    ("GET", "/attention-items"),
    ("GET", "/claims/{claim_id}"),
    ("POST", "/claims/{claim_id}/consent-requests"),
    ("POST", "/claims/{claim_id}/submission"),
    ("POST", "/claims/{claim_id}/cancellation"),
    ("GET", "/referrals/{referral_id}"),
    ("GET", "/consent/{token}"),
    ("HEAD", "/consent/{token}"),
    ("POST", "/consent/{token}"),
    ("POST", "/ops/reference-data"),
    ("POST", "/ops/claims/{claim_id}/review"),
}
# Each route of the table and the function that serves it.
TABLE_ROUTES = {(route.method, route.path): function.logical_id for function, route in function_table.routes()}
# Rule 15: the customer's consent page is public; the token in the path is its only credential.
PUBLIC_ROUTES = {("GET", "/consent/{token}"), ("HEAD", "/consent/{token}"), ("POST", "/consent/{token}")}

CLAIMS = "ClaimsTable"
GSI1 = "ClaimsTable/index/GSI1"
DUE_INDEX = "ClaimsTable/index/DueIndex"
IDEMPOTENCY = "IdempotencyTable"
CLAIMS_STREAM = "ClaimsTable.StreamArn"
EVENT_BUS = "CustomersEventBus"
PUBLISHER = "PublishEventsFunction"
PUBLISHER_ROLE = "PublishEventsRole"
PUBLISHER_QUEUE = "PublishEventsDeadLetterQueue"
PUBLISHER_LOG_GROUP = "PublishEventsLogGroup"
STREAM_READS = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
# ListStreams names no stream: the event source mapping's check is authorised on the table's streams.
CLAIMS_STREAMS = "ClaimsTable/stream/*"
# X-Ray's PutTraceSegments and PutTelemetryRecords take no resource: the one "*" any policy may hold.
TRACE_WRITES = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# Transactions are authorised item by item; no transaction holds a ConditionCheck.
CLAIM_WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
IDEMPOTENCY_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
SEND_EMAIL = {"ses:SendEmail"}
# The consent email, the partner's decision email, and the sweep's consent reminders.
EMAIL_SENDERS = {"RequestConsentFunction", "ConsentPageFunction", "ExpireClaimsFunction"}
FEEDBACK_DETAIL_TYPES = {"Email Bounced", "Email Complaint Received"}

# Least privilege: exactly these actions on exactly these resources, nothing else.
EXPECTED_PERMISSIONS: dict[str, dict[str, set[str]]] = {
    # Issue 16: every read and preview route in one function, granted the union of what those routes read when each
    # was its own function (engagements Query + GSI1; locations GSI1; eligibility BatchGetItem + Query; quote
    # BatchGetItem; claim and referral GetItem; known customers Query; Customers page and attention items
    # BatchGetItem, Query + GSI1) and nothing that writes.
    "ReadsFunction": {
        CLAIMS: {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"},
        GSI1: {"dynamodb:Query"},
    },
    # GetItem: the read-back of a transaction whose answer was lost (DynamoDBClaimRepository._landed).
    "AddCustomerFunction": {
        CLAIMS: {"dynamodb:GetItem", "dynamodb:BatchGetItem", *CLAIM_WRITES},
        IDEMPOTENCY: IDEMPOTENCY_ACTIONS,
    },
    # Upserts in BatchWriteItem only (mci.adapters.dynamodb_batches.batch_write); it reads no claim. Its
    # Idempotency-Key (SPEC §4) is a record in the idempotency table, as every mutating route's.
    "LoadReferenceDataFunction": {CLAIMS: {"dynamodb:BatchWriteItem"}, IDEMPOTENCY: IDEMPOTENCY_ACTIONS},
    # No counter or referral update: a consent request never moves a deadline nor ends a claim.
    "RequestConsentFunction": {
        CLAIMS: {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
        IDEMPOTENCY: IDEMPOTENCY_ACTIONS,
        SES_IDENTITY: SEND_EMAIL,
        SES_CONFIGURATION_SET: SEND_EMAIL,
    },
    "ConsentPageFunction": {
        CLAIMS: {"dynamodb:GetItem", "dynamodb:BatchGetItem", *CLAIM_WRITES},
        SES_IDENTITY: SEND_EMAIL,
        SES_CONFIGURATION_SET: SEND_EMAIL,
    },
    # Feedback changes only the claim's email: the claim item, read and written.
    "SesFeedbackFunction": {CLAIMS: {"dynamodb:GetItem", "dynamodb:PutItem"}},
    # Rule 9: the same transaction as adding a customer.
    "ClaimCustomerFunction": {
        CLAIMS: {"dynamodb:GetItem", "dynamodb:BatchGetItem", *CLAIM_WRITES},
        IDEMPOTENCY: IDEMPOTENCY_ACTIONS,
    },
    # Rule 19: one conditional transaction per change.
    # Submitting never ends a claim: no guard to delete.
    "SubmitClaimFunction": {
        CLAIMS: {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        IDEMPOTENCY: IDEMPOTENCY_ACTIONS,
    },
    "CancelClaimFunction": {CLAIMS: {"dynamodb:GetItem", *CLAIM_WRITES}, IDEMPOTENCY: IDEMPOTENCY_ACTIONS},
    "ReviewClaimFunction": {CLAIMS: {"dynamodb:GetItem", *CLAIM_WRITES}, IDEMPOTENCY: IDEMPOTENCY_ACTIONS},
    # Rule 17: due claims from the sparse index only (never the table), then expire or remind.
    # Rule 20: this table's stream in, this stack's bus out, failed batches parked; nothing else.
    PUBLISHER: {
        CLAIMS_STREAM: STREAM_READS,
        CLAIMS_STREAMS: {"dynamodb:ListStreams"},
        EVENT_BUS: {"events:PutEvents"},
        PUBLISHER_QUEUE: {"sqs:SendMessage"},
        PUBLISHER_LOG_GROUP: {"logs:CreateLogStream", "logs:PutLogEvents"},
        "*": TRACE_WRITES,
    },
    "ExpireClaimsFunction": {
        DUE_INDEX: {"dynamodb:Query"},
        CLAIMS: {
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        },
        SES_IDENTITY: SEND_EMAIL,
        SES_CONFIGURATION_SET: SEND_EMAIL,
    },
}
SWEEP = "ExpireClaimsFunction"
SWEEP_QUEUE = "ExpirySweepDeadLetterQueue"


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


def route_settings(template: dict[str, Any], event_properties: dict[str, Any]) -> dict[str, Any]:
    """The throttling API Gateway applies to a route: its own RouteSettings, else the API's default."""
    default = template["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"]
    return dict(event_properties.get("RouteSettings") or default)


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
    # The expiry sweep reads whole claims from the index (no GetItem per due claim).
    assert indexes["DueIndex"]["Projection"] == {"ProjectionType": "ALL"}
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
    # mci.settings reads both; the configuration set is what routes feedback to SesFeedbackFunction.
    assert variables["SENDER_EMAIL"] == {"Ref": "SenderEmail"}
    assert variables["SES_CONFIGURATION_SET"] == {"Ref": "ConsentConfigurationSet"}
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE"} <= set(variables)


def test_layers_hold_dependencies_and_the_shared_package(template: dict[str, Any]) -> None:
    layers = resources_of_type(template, "AWS::Serverless::LayerVersion")

    assert layers["DependenciesLayer"]["Properties"]["ContentUri"] == "layers/dependencies/"
    assert layers["SharedLayer"]["Properties"]["ContentUri"] == "shared/"
    assert (ROOT / "layers/dependencies/requirements.txt").is_file()
    assert (ROOT / "shared/mci/__init__.py").is_file()
    for layer in layers.values():
        # Each layer's Makefile ships bytecode: Lambda's /opt is read-only (docs/performance.md, proposal 1).
        assert layer["Metadata"]["BuildMethod"] == "makefile"
        assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    for folder, logical_id in (("layers/dependencies", "DependenciesLayer"), ("shared", "SharedLayer")):
        makefile = (ROOT / folder / "Makefile").read_text()
        assert f"build-{logical_id}:" in makefile
        assert "compileall" in makefile
        assert "--invalidation-mode unchecked-hash" in makefile


def test_every_function_has_a_log_group_with_retention(template: dict[str, Any]) -> None:
    log_groups = resources_of_type(template, "AWS::Logs::LogGroup")
    by_name = {str(group["Properties"]["LogGroupName"].get("Fn::Sub")): group for group in log_groups.values()}

    for logical_id, function in functions(template).items():
        # A named function's group is named after the name (a Ref to the function would make a cycle
        # through the role that may write to the group).
        named = function["Properties"].get("FunctionName")
        expected = f"/aws/lambda/{named['Fn::Sub']}" if named else f"/aws/lambda/${{{logical_id}}}"
        group = by_name.get(expected)
        assert group is not None, f"{logical_id} has no explicit log group"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_function_logs_json_at_info_into_its_own_log_group(template: dict[str, Any]) -> None:
    """Lambda's own lines (an invocation that raised, a timeout, START/REPORT) are JSON like the service's, so a Logs
    Insights query or metric filter keyed on fields sees them too (docs/operations.md)."""
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for function in function_table.FUNCTIONS:
        config = functions(template)[function.logical_id]["Properties"]["LoggingConfig"]
        assert config["LogFormat"] == "JSON", function.name
        # The group the function logs to is the one the stack creates, encrypts and keeps (a Ref: created first).
        assert config["LogGroup"] == {"Ref": function.log_group}, function.name
        # INFO, no other: Lambda drops a line below the level, and reads a line without a "level" as INFO: at WARN it
        # would drop the EMF metric lines and the "sweep finished" line the metric filters read; at DEBUG the
        # runtime's root logger would print botocore's debug lines (request and response bodies, contacts' data).
        assert config["ApplicationLogLevel"] == "INFO", function.name
        # START, END and REPORT (duration, memory, a timeout's status) are INFO platform events.
        assert config["SystemLogLevel"] == "INFO", function.name
        # Powertools takes Lambda's level (AWS_LAMBDA_LOG_LEVEL) over its own: the two say the same.
        assert variables["POWERTOOLS_LOG_LEVEL"] == config["ApplicationLogLevel"]
    # A sampled invocation's DEBUG lines would be dropped by Lambda at INFO: no sampling that never reaches a log.
    assert "POWERTOOLS_LOGGER_SAMPLE_RATE" not in variables


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
    assert set(functions(template)) == set(EXPECTED_PERMISSIONS)
    for logical_id, function in functions(template).items():
        statements = granted_statements(template, function)
        assert statements, f"{logical_id} has no inline policy"
        assert all(isinstance(policy, dict) for policy in as_list(function["Properties"].get("Policies", []))), (
            f"{logical_id} uses a managed policy or policy template"
        )
        granted: dict[str, set[str]] = {}
        for statement in statements:
            if statement.get("Sid") == "OwnLogGroupOnly":
                # The Deny fencing SAM's logs-on-"*" (test_template_security.py::
                # test_sam_generated_roles_write_only_to_their_own_log_group): it grants nothing.
                assert statement["Effect"] == "Deny", logical_id
                continue
            assert statement["Effect"] == "Allow"
            assert "Condition" not in statement, f"{logical_id}: conditions are not expected"
            for resource in as_list(statement["Resource"]):
                name = resource_name(resource)
                if name == "*":
                    assert set(as_list(statement["Action"])) <= TRACE_WRITES, f"{logical_id} grants {statement}"
                elif name != CLAIMS_STREAMS:  # the one pattern: this table's streams, for ListStreams
                    assert "*" not in name, f"{logical_id} grants on {resource}"
                granted.setdefault(name, set()).update(as_list(statement["Action"]))
        assert granted == EXPECTED_PERMISSIONS[logical_id], logical_id


def test_only_the_email_senders_send_email_and_only_as_the_sender(template: dict[str, Any]) -> None:
    for logical_id, function in functions(template).items():
        ses_statements = [
            statement
            for statement in granted_statements(template, function)
            if any(action.startswith("ses:") for action in as_list(statement["Action"]))
        ]
        if logical_id not in EMAIL_SENDERS:
            assert not ses_statements, f"{logical_id} may use SES"
            continue
        assert len(ses_statements) == 1, logical_id
        statement = ses_statements[0]
        # SendEmail only: no SendRawEmail, SendBulkEmail or identity administration.
        assert as_list(statement["Action"]) == ["ses:SendEmail"]
        assert {resource_name(r) for r in as_list(statement["Resource"])} == {SES_IDENTITY, SES_CONFIGURATION_SET}


def test_no_function_may_scan(template: dict[str, Any]) -> None:
    for logical_id, function in functions(template).items():
        for statement in granted_statements(template, function):
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
                throttling = route_settings(template, event["Properties"])
                assert throttling["ThrottlingBurstLimit"] > 0
                assert throttling["ThrottlingRateLimit"] > 0

    assert served == {key: [logical_id] for key, logical_id in TABLE_ROUTES.items()}
    assert set(served) == SPEC_ROUTES


def test_every_route_is_throttled_at_or_below_the_api_default(template: dict[str, Any]) -> None:
    default = template["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"]
    for logical_id, function in functions(template).items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            throttling = route_settings(template, event["Properties"])
            assert throttling["ThrottlingBurstLimit"] <= default["ThrottlingBurstLimit"], logical_id
            assert throttling["ThrottlingRateLimit"] <= default["ThrottlingRateLimit"], logical_id
            assert throttling["ThrottlingRateLimit"] <= throttling["ThrottlingBurstLimit"], logical_id


def test_only_the_sweep_feedback_and_publisher_have_an_event_other_than_a_route(template: dict[str, Any]) -> None:
    other = {
        (logical_id, event["Type"])
        for logical_id, function in functions(template).items()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] != "HttpApi"
    }

    assert other == {("SesFeedbackFunction", "EventBridgeRule"), (SWEEP, "ScheduleV2"), (PUBLISHER, "DynamoDB")}


def test_the_public_consent_routes_are_throttled_below_the_api_default(template: dict[str, Any]) -> None:
    default = template["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"]
    public: set[tuple[str, str]] = set()
    for function in functions(template).values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            properties = event["Properties"]
            key = (properties["Method"], properties["Path"])
            if properties.get("Auth", {}).get("Authorizer") != "NONE":
                continue
            public.add(key)
            throttling = route_settings(template, properties)
            assert throttling["ThrottlingBurstLimit"] < default["ThrottlingBurstLimit"], key
            assert throttling["ThrottlingRateLimit"] < default["ThrottlingRateLimit"], key
            # Nothing but NONE: no scopes, no other authorizer to fall back to.
            assert properties["Auth"] == {"Authorizer": "NONE"}, key

    assert public == PUBLIC_ROUTES


def test_routes_reads_every_http_api_event(template: dict[str, Any]) -> None:
    found = routes(template)

    assert {(route.method, route.path): route.function for route in found} == TABLE_ROUTES
    assert len(found) == len(SPEC_ROUTES)
    add_customer = next(route for route in found if route.path == "/customers")
    assert add_customer == Route(
        method="POST",
        path="/customers",
        function="AddCustomerFunction",
        code_uri="functions/add_customer/",
        handler="app.lambda_handler",
        authorized=True,
        scopes=("mci/partner",),
    )
    assert {(route.method, route.path) for route in found if not route.authorized} == PUBLIC_ROUTES
    consent_page = next(route for route in found if (route.method, route.path) == ("POST", "/consent/{token}"))
    assert consent_page == Route(
        method="POST",
        path="/consent/{token}",
        function="ConsentPageFunction",
        code_uri="functions/consent_page/",
        handler="app.lambda_handler",
        authorized=False,
    )


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
    # Browsers may call it only from the web app's distribution (tests/unit/test_web_hosting.py).
    assert api["CorsConfiguration"]["AllowOrigins"] == [{"Fn::Sub": "https://${WebAppDistribution.DomainName}"}]
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

    assert routes(template) == [Route("GET", "/page", "Page", "functions/page/", "app.handler", authorized=False)]


# ---------------------------------------------------------------- the one table (functions/table.py)


def test_committed_template_is_generated_from_the_table() -> None:
    committed = TEMPLATE_PATH.read_text(encoding="utf-8")

    assert committed == render(committed), f"template.yaml's functions differ from functions/table.py: run `{COMMAND}`"


def test_generation_is_stable_and_rewrites_only_the_generated_region() -> None:
    committed = TEMPLATE_PATH.read_text(encoding="utf-8")
    hand_written = "  # a hand-written resource, kept where it is\n"
    edited = committed.replace("  CursorSigningKey:\n", hand_written + "  CursorSigningKey:\n")
    stale = edited.replace("CodeUri: functions/reads/", "CodeUri: functions/stale/")

    assert stale != edited
    assert render(stale) == render(render(stale)) == edited
    with pytest.raises(ValueError, match="generated markers"):
        render(committed.replace("# ---- generated from", "# ---- written from"))


def test_generated_scalars_read_back_as_written() -> None:
    """Plain where YAML reads the text back unchanged, quoted where it would read a date, a boolean, a mapping."""
    texts = ["2012-10-17", "OFF", "true", "25", "", "{{resolve:x}}", '{"a": ["b"]}', "a: b", "# no", "GET /x - y."]
    for text in texts:
        line = f"key: {scalar(text)}"
        assert yaml.safe_load(line) == {"key": text}, line
    assert (
        scalar("GET /engagements - engagements open to the caller.")
        == "GET /engagements - engagements open to the caller."
    )
    assert scalar(function_table.Sub("${ClaimsTable.Arn}/index/GSI1")) == "!Sub ${ClaimsTable.Arn}/index/GSI1"
    assert scalar(function_table.GetAtt("ClaimsTable.Arn")) == "!GetAtt ClaimsTable.Arn"
    assert [scalar(value) for value in (False, -1, function_table.Ref("HttpApi"))] == ["false", "-1", "!Ref HttpApi"]


def test_the_table_serves_exactly_the_spec_routes_each_once() -> None:
    keys = [(route.method, route.path) for _, route in function_table.routes()]

    assert sorted(keys) == sorted(SPEC_ROUTES)
    for function in function_table.FUNCTIONS:
        assert (ROOT / "functions" / function.folder / "app.py").is_file(), function.name
        for route in function.routes:
            # Public routes are the consent page's (rule 15); operations routes take operations only (rule 30).
            assert (route.roles is None) is ((route.method, route.path) in PUBLIC_ROUTES), route.key
            assert (route.roles == function_table.OPERATIONS_ROLES) is route.path.startswith("/ops/"), route.key


def test_no_route_restates_the_api_default_throttle(template: dict[str, Any]) -> None:
    default = template["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"]
    default_limits = (default["ThrottlingBurstLimit"], default["ThrottlingRateLimit"])
    for logical_id, function in functions(template).items():
        for name, event in function["Properties"].get("Events", {}).items():
            settings = event["Properties"].get("RouteSettings")
            if event["Type"] == "HttpApi" and settings is not None:
                limits = (settings["ThrottlingBurstLimit"], settings["ThrottlingRateLimit"])
                assert limits != default_limits, f"{logical_id}.{name} restates the API default: leave it out"
    for _, route in function_table.routes():
        assert route.throttle != default_limits, route.key


def test_every_function_invoked_without_a_caller_parks_what_fails(template: dict[str, Any]) -> None:
    """What checkov's CKV_AWS_116 (skipped for every function in .checkov.yaml) asks for, where it applies: a
    function no caller waits for sends what it gives up on to a queue of this stack, with its error."""
    for logical_id, function in functions(template).items():
        properties = function["Properties"]
        events = properties.get("Events", {}).values()
        if all(event["Type"] == "HttpApi" for event in events):
            continue  # synchronous: the caller gets the 5xx
        destinations = [properties.get("EventInvokeConfig", {}).get("DestinationConfig")]
        destinations += [event["Properties"].get("DestinationConfig") for event in events]
        queues = [d["OnFailure"]["Destination"] for d in destinations if d]
        assert len(queues) == 1, f"{logical_id} parks nothing it gives up on"
        (queue,) = queues
        assert template["Resources"][queue["Fn::GetAtt"][0]]["Type"] == "AWS::SQS::Queue", logical_id


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
    assert outputs["Name"]["Value"] == {"Fn::If": ["IsProd", {"Fn::Sub": "x-${Stage}"}, {"Fn::Join": ["", ["a", "b"]]}]}
    assert outputs["Listed"]["Value"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert outputs["Cond"]["Value"] == {"Condition": "IsProd"}
    assert outputs["Mapped"]["Value"] == {"Fn::Sub": ["${A}", {"A": {"Ref": "B"}}]}


def test_load_template_refuses_a_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("- just a list\n", encoding="utf-8")

    with pytest.raises(ValueError, match="not a CloudFormation template"):
        load_template(path)


def test_outputs_name_the_api_and_tables(template: dict[str, Any]) -> None:
    assert set(template["Outputs"]) >= {
        "ApiUrl",
        "ClaimsTableName",
        "IdempotencyTableName",
        "SesConfigurationSetName",
        "SesFeedbackDeadLetterQueueUrl",
        "ExpirySweepDeadLetterQueueUrl",
        "EventBusName",
        "EventBusArn",
        "PublishEventsDeadLetterQueueUrl",
    }
    assert template["Outputs"]["ExpirySweepDeadLetterQueueUrl"]["Value"] == {"Ref": SWEEP_QUEUE}
    assert template["Outputs"]["EventBusName"]["Value"] == {"Ref": EVENT_BUS}
    assert template["Outputs"]["EventBusArn"]["Value"] == {"Fn::GetAtt": [EVENT_BUS, "Arn"]}
    assert template["Outputs"]["PublishEventsDeadLetterQueueUrl"]["Value"] == {"Ref": PUBLISHER_QUEUE}


# ---------------------------------------------------------------- SES and its feedback path


def test_the_sender_identity_is_the_sender_email_and_uses_the_configuration_set(template: dict[str, Any]) -> None:
    identities = resources_of_type(template, "AWS::SES::EmailIdentity")

    assert set(identities) == {"SenderEmailIdentity"}
    identity = identities["SenderEmailIdentity"]
    assert identity["Properties"]["EmailIdentity"] == {"Ref": "SenderEmail"}
    assert identity["Properties"]["ConfigurationSetAttributes"] == {
        "ConfigurationSetName": {"Ref": "ConsentConfigurationSet"}
    }
    # An identity verified outside the stack can be kept out of it.
    assert identity["Condition"] == "ManageSenderIdentity"
    assert template["Conditions"]["ManageSenderIdentity"] == {"Fn::Equals": [{"Ref": "CreateSenderIdentity"}, "true"]}
    assert template["Parameters"]["CreateSenderIdentity"]["Default"] == "true"


def test_the_configuration_set_never_tracks_clicks_or_opens(template: dict[str, Any]) -> None:
    sets = resources_of_type(template, "AWS::SES::ConfigurationSet")

    assert set(sets) == {"ConsentConfigurationSet"}
    properties = sets["ConsentConfigurationSet"]["Properties"]
    # Click tracking would rewrite the consent link (a secret) through an SES redirect domain.
    assert "TrackingOptions" not in properties
    assert "VdmOptions" not in properties
    assert properties["DeliveryOptions"] == {"TlsPolicy": "REQUIRE"}
    assert properties["ReputationOptions"] == {"ReputationMetricsEnabled": True}
    assert properties["SendingOptions"] == {"SendingEnabled": True}
    assert set(properties["SuppressionOptions"]["SuppressedReasons"]) == {"BOUNCE", "COMPLAINT"}


def test_bounces_and_complaints_are_published_to_the_default_event_bus(template: dict[str, Any]) -> None:
    destinations = resources_of_type(template, "AWS::SES::ConfigurationSetEventDestination")

    assert len(destinations) == 1
    properties = next(iter(destinations.values()))["Properties"]
    assert properties["ConfigurationSetName"] == {"Ref": "ConsentConfigurationSet"}
    destination = properties["EventDestination"]
    assert destination["Enabled"] is True
    assert {"bounce", "complaint"} <= set(destination["MatchingEventTypes"])
    assert not {"open", "click"} & set(destination["MatchingEventTypes"])
    assert destination["EventBridgeDestination"] == {
        "EventBusArn": {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"}
    }


def feedback_rule(template: dict[str, Any]) -> dict[str, Any]:
    events = functions(template)["SesFeedbackFunction"]["Properties"]["Events"]
    assert len(events) == 1
    event = next(iter(events.values()))
    assert event["Type"] == "EventBridgeRule"
    return dict(event["Properties"])


def test_the_feedback_rule_matches_ses_bounces_and_complaints_of_this_stack(template: dict[str, Any]) -> None:
    rule = feedback_rule(template)
    pattern = rule["Pattern"]

    assert "EventBusName" not in rule  # SES publishes to the default bus only
    assert pattern["source"] == ["aws.ses"]
    assert set(pattern["detail-type"]) == FEEDBACK_DETAIL_TYPES
    # Only messages sent through this stack's configuration set (SES tags every message with it).
    assert pattern["detail"] == {"mail": {"tags": {"ses:configuration-set": [{"Ref": "ConsentConfigurationSet"}]}}}
    # The handler understands exactly the event types these detail types carry.
    handler = (ROOT / "functions/ses_feedback/app.py").read_text(encoding="utf-8")
    assert '"Bounce"' in handler
    assert '"Complaint"' in handler


def test_undeliverable_feedback_is_parked_in_a_dead_letter_queue(template: dict[str, Any]) -> None:
    rule = feedback_rule(template)
    queue_arn = {"Fn::GetAtt": ["SesFeedbackDeadLetterQueue", "Arn"]}

    assert rule["DeadLetterConfig"] == {"Arn": queue_arn}
    assert rule["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert rule["RetryPolicy"]["MaximumEventAgeInSeconds"] > 0
    # A handler failure after Lambda's own retries lands in the same queue.
    invoke = functions(template)["SesFeedbackFunction"]["Properties"]["EventInvokeConfig"]
    assert invoke["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": queue_arn}

    queue = template["Resources"]["SesFeedbackDeadLetterQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600

    policy = template["Resources"]["SesFeedbackDeadLetterQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "SesFeedbackDeadLetterQueue"}]
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1
    allow = allows[0]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Resource"] == queue_arn
    # Only this stack's feedback rule may write to the queue.
    rule_name = rule["RuleName"]["Fn::Sub"]
    assert allow["Condition"] == {
        "ArnEquals": {
            "aws:SourceArn": {
                "Fn::Sub": f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{rule_name}"
            }
        }
    }


# ---------------------------------------------------------------- expiry sweep and reminders (rule 17)


def sweep_schedule(template: dict[str, Any]) -> dict[str, Any]:
    events = functions(template)[SWEEP]["Properties"]["Events"]
    assert len(events) == 1
    event = next(iter(events.values()))
    assert event["Type"] == "ScheduleV2"  # EventBridge Scheduler, not an EventBridge rule
    return dict(event["Properties"])


def test_the_sweep_runs_every_five_minutes_on_time(template: dict[str, Any]) -> None:
    schedule = sweep_schedule(template)

    assert schedule["ScheduleExpression"] == "rate(5 minutes)"
    # "OFF" as text: unquoted, YAML would read the boolean false.
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule.get("State", "ENABLED") == "ENABLED"
    # Schedule names are unique per account and region (default group): one per stage.
    assert schedule["Name"] == {"Fn::Sub": "mci-customers-${Stage}-expiry-sweep"}
    # SAM generates the execution role (invoke this function, send to this queue, nothing else).
    assert "RoleArn" not in schedule
    assert "Input" not in schedule


def test_undeliverable_sweeps_are_retried_then_parked_in_a_dead_letter_queue(template: dict[str, Any]) -> None:
    schedule = sweep_schedule(template)
    queue_arn = {"Fn::GetAtt": [SWEEP_QUEUE, "Arn"]}

    retry = schedule["RetryPolicy"]
    assert 0 < retry["MaximumRetryAttempts"] <= 185
    # A run older than one interval is superseded by the next one.
    assert 60 <= retry["MaximumEventAgeInSeconds"] <= 300
    assert schedule["DeadLetterConfig"] == {"Arn": queue_arn}

    queue = template["Resources"][SWEEP_QUEUE]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["Properties"]["QueueName"] == {"Fn::Sub": "mci-customers-${Stage}-expiry-sweep-dlq"}


def test_the_sweep_queue_refuses_insecure_transport_and_grants_no_service(template: dict[str, Any]) -> None:
    policies = [
        resource["Properties"]
        for resource in resources_of_type(template, "AWS::SQS::QueuePolicy").values()
        if resource["Properties"]["Queues"] == [{"Ref": SWEEP_QUEUE}]
    ]

    assert len(policies) == 1
    statements = policies[0]["PolicyDocument"]["Statement"]
    # The Scheduler writes with the schedule's execution role and Lambda's on-failure destination with
    # the function's role: a resource-based Allow would only widen who may write.
    assert [s for s in statements if s["Effect"] == "Allow"] == []
    assert statements == [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": {"Fn::GetAtt": [SWEEP_QUEUE, "Arn"]},
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]


def test_a_failed_or_stale_sweep_is_parked_not_retried(template: dict[str, Any]) -> None:
    invoke = functions(template)[SWEEP]["Properties"]["EventInvokeConfig"]

    # Every run is idempotent and the next one is five minutes away.
    assert invoke["MaximumRetryAttempts"] == 0
    assert 60 <= invoke["MaximumEventAgeInSeconds"] <= 300
    assert invoke["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": [SWEEP_QUEUE, "Arn"]},
    }


def test_two_sweeps_never_overlap(template: dict[str, Any]) -> None:
    properties = functions(template)[SWEEP]["Properties"]

    assert properties["ReservedConcurrentExecutions"] == 1
    assert properties["Timeout"] == 300
    # A run ends before the next one is due.
    assert properties["Timeout"] <= 5 * 60
    assert properties["CodeUri"] == "functions/expire_claims/"


def test_reminder_days_are_a_parameter_every_function_reads(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["ReminderDays"]

    assert parameter["Type"] == "String"
    assert parameter["Default"] == "7,1"
    pattern = re.compile(parameter["AllowedPattern"])
    assert all(pattern.fullmatch(value) for value in ("7,1", "14,7,1", "3"))
    assert not any(pattern.fullmatch(value) for value in ("", "7,", "7;1", "seven", "7, 1"))
    # Globals: the days are fixed on each claim where it is created (add and claim customer); the
    # sweep sends what each claim has pending. One value for all keeps them in step.
    assert template["Globals"]["Function"]["Environment"]["Variables"]["REMINDER_DAYS"] == {"Ref": "ReminderDays"}
    for logical_id in ("AddCustomerFunction", "ClaimCustomerFunction", SWEEP):
        environment = function_environment(template, logical_id)
        assert environment["REMINDER_DAYS"] == "7,1", logical_id
        assert Settings.from_environ(environment).reminder_offsets == (7, 1), logical_id


def test_the_sweep_sends_at_most_the_ses_rate_a_parameter_sets(template: dict[str, Any]) -> None:
    """docs/scaling.md: the sweep's redeliveries are paced at SES's maximum send rate, 14 a second for a new
    production account unless the stack says otherwise; only the sweep paces (an API call sends one email)."""
    parameter = template["Parameters"]["SesMaxSendRate"]
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"]) == ("Number", 14, 1)
    environment = function_environment(template, SWEEP)
    assert functions(template)[SWEEP]["Properties"]["Environment"]["Variables"]["SES_MAX_SEND_RATE"] == {
        "Ref": "SesMaxSendRate"
    }
    assert Settings.from_environ(environment).ses_max_send_rate == 14.0
    assert Settings().ses_max_send_rate == 14.0
    readers = {name for name in functions(template) if "SES_MAX_SEND_RATE" in function_environment(template, name)}
    assert readers == {SWEEP}


def test_the_sweep_stops_sending_a_parameter_set_margin_before_its_timeout(template: dict[str, Any]) -> None:
    """docs/scaling.md: a run sends nothing more once its invocation has less than SWEEP_SEND_MARGIN_SECONDS left, so
    Lambda never ends it between SES taking an email and its outbox write. A margin at or above the timeout would
    defer every email of every run: the parameter cannot reach the sweep's timeout, and a test ties the two."""
    parameter = template["Parameters"]["SweepSendMarginSeconds"]
    timeout = functions(template)[SWEEP]["Properties"]["Timeout"]
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"]) == ("Number", 15, 1)
    # At most half the timeout: a run keeps at least half its time for sending.
    assert parameter["Default"] < parameter["MaxValue"] <= timeout / 2
    variables = functions(template)[SWEEP]["Properties"]["Environment"]["Variables"]
    assert variables["SWEEP_SEND_MARGIN_SECONDS"] == {"Ref": "SweepSendMarginSeconds"}
    assert Settings.from_environ(function_environment(template, SWEEP)).sweep_send_margin_seconds == 15.0
    readers = {
        name for name in functions(template) if "SWEEP_SEND_MARGIN_SECONDS" in function_environment(template, name)
    }
    assert readers == {SWEEP}
    # Settings refuse a margin no Lambda function's timeout (900 s at most) can exceed.
    with pytest.raises(ValidationError, match="sweep_send_margin_seconds"):
        Settings.from_environ({"SWEEP_SEND_MARGIN_SECONDS": "900"})
    assert Settings.from_environ({"SWEEP_SEND_MARGIN_SECONDS": "899"}).sweep_send_margin_seconds == 899.0


# ---------------------------------------------------------------- domain events (rule 20) and referrals (rule 25)


def stream_event(template: dict[str, Any]) -> dict[str, Any]:
    events = functions(template)[PUBLISHER]["Properties"]["Events"]
    assert len(events) == 1
    event = next(iter(events.values()))
    assert event["Type"] == "DynamoDB"
    return dict(event["Properties"])


def test_the_event_bus_is_the_stacks_own_and_named_per_stage(template: dict[str, Any]) -> None:
    buses = resources_of_type(template, "AWS::Events::EventBus")

    assert set(buses) == {EVENT_BUS}
    assert buses[EVENT_BUS]["Properties"]["Name"] == {"Fn::Sub": "mci-customers-${Stage}"}


def test_only_the_publisher_knows_the_bus_and_its_settings_read_it(template: dict[str, Any]) -> None:
    assert "EVENT_BUS_NAME" not in template["Globals"]["Function"]["Environment"]["Variables"]
    for logical_id, function in functions(template).items():
        variables = (function["Properties"].get("Environment") or {}).get("Variables") or {}
        assert ("EVENT_BUS_NAME" in variables) is (logical_id == PUBLISHER), logical_id
    variables = functions(template)[PUBLISHER]["Properties"]["Environment"]["Variables"]
    assert variables["EVENT_BUS_NAME"] == {"Ref": EVENT_BUS}
    environment = function_environment(template, PUBLISHER)
    assert Settings.from_environ(environment).event_bus_name == EVENT_BUS  # the local stack's name for it


def test_the_publisher_reads_the_claims_stream_in_order_with_partial_batch_failures(template: dict[str, Any]) -> None:
    event = stream_event(template)
    properties = functions(template)[PUBLISHER]["Properties"]

    assert properties["CodeUri"] == "functions/publish_events/"
    assert event["Stream"] == {"Fn::GetAtt": ["ClaimsTable", "StreamArn"]}
    assert event["StartingPosition"] == "TRIM_HORIZON"
    assert event["BatchSize"] == 25
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # Ordering: no bisecting (it re-delivers published records and skips ahead), one batch per shard at a time.
    assert event["BisectBatchOnFunctionError"] is False
    assert event["ParallelizationFactor"] == 1
    # Retried until published or 6 hours old, then parked while the stream (24 h) still holds the records.
    assert event["MaximumRetryAttempts"] == -1
    assert 3600 <= event["MaximumRecordAgeInSeconds"] <= 12 * 3600
    assert event["DestinationConfig"] == {
        "OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": [PUBLISHER_QUEUE, "Arn"]}}
    }
    assert properties["Timeout"] >= 30


def test_the_stream_filter_passes_only_claim_and_referral_items(template: dict[str, Any]) -> None:
    from local.events_feed import passes

    filters = [json.loads(f["Pattern"]) for f in stream_event(template)["FilterCriteria"]["Filters"]]
    assert filters == [
        {"dynamodb": {"NewImage": {"type": {"S": ["claim", "referral"]}}}},
        {"dynamodb": {"OldImage": {"type": {"S": ["claim", "referral"]}}}},
    ]

    def record(new: str | None, old: str | None = None) -> dict[str, Any]:
        change: dict[str, Any] = {}
        if new:
            change["NewImage"] = {"PK": {"S": "X"}, "type": {"S": new}}
        if old:
            change["OldImage"] = {"PK": {"S": "X"}, "type": {"S": old}}
        return {"eventName": "MODIFY", "dynamodb": change}

    for kind in ("claim", "referral"):
        assert passes(record(kind), filters)
        assert passes(record(kind, kind), filters)
        assert passes(record(None, kind), filters)  # a removal: no event, but the publisher decides that
    for kind in ("guard", "consent_token", "known_customer", "engagement", "location", "customer", "domain"):
        assert not passes(record(kind), filters), kind
        assert not passes(record(None, kind), filters), kind
    assert not passes({"dynamodb": {"NewImage": {"PK": {"S": "LIMIT#e#k"}, "active_count": {"N": "1"}}}}, filters)


def test_the_publisher_has_its_own_role_and_no_managed_policy(template: dict[str, Any]) -> None:
    function = functions(template)[PUBLISHER]["Properties"]
    role = template["Resources"][PUBLISHER_ROLE]

    # With Role set, SAM generates no role: nothing attaches AWSLambdaDynamoDBExecutionRole (stream reads
    # and logs on "*") or any other managed policy, and Policies would be ignored.
    assert function["Role"] == {"Fn::GetAtt": [PUBLISHER_ROLE, "Arn"]}
    assert "Policies" not in function
    assert role["Type"] == "AWS::IAM::Role"
    assert "ManagedPolicyArns" not in role["Properties"]
    assert "PermissionsBoundary" not in role["Properties"]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    # Named, so that its log group (and the role's right to write there) needs no reference back to it.
    assert function["FunctionName"] == {"Fn::Sub": "mci-customers-${Stage}-publish-events"}
    log_group = template["Resources"][PUBLISHER_LOG_GROUP]["Properties"]
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/mci-customers-${Stage}-publish-events"}


def test_only_the_publisher_puts_events_and_only_on_the_stacks_bus(template: dict[str, Any]) -> None:
    for logical_id, function in functions(template).items():
        statements = [
            s
            for s in granted_statements(template, function)
            if any(
                str(a).startswith(("events:", "dynamodb:GetRecords", "dynamodb:GetShardIterator"))
                for a in as_list(s["Action"])
            )
        ]
        if logical_id != PUBLISHER:
            assert not statements, f"{logical_id} may read the stream or use EventBridge"
            continue
        granted = {
            (resource_name(r), a) for s in statements for r in as_list(s["Resource"]) for a in as_list(s["Action"])
        }
        assert {a for r, a in granted if a.startswith("events:")} == {"events:PutEvents"}
        assert {r for r, a in granted if a.startswith("events:")} == {EVENT_BUS}
        assert {r for r, a in granted if a.startswith("dynamodb:")} == {CLAIMS_STREAM}


def test_failed_stream_batches_are_parked_in_a_queue_of_their_own(template: dict[str, Any]) -> None:
    queue = template["Resources"][PUBLISHER_QUEUE]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["QueueName"] == {"Fn::Sub": "mci-customers-${Stage}-publish-events-dlq"}
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    policies = [
        r["Properties"]
        for r in resources_of_type(template, "AWS::SQS::QueuePolicy").values()
        if r["Properties"]["Queues"] == [{"Ref": PUBLISHER_QUEUE}]
    ]
    assert len(policies) == 1
    # The on-failure destination sends with the function's role: the queue grants no one anything.
    statements = policies[0]["PolicyDocument"]["Statement"]
    assert [s["Effect"] for s in statements] == ["Deny"]
    assert statements[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_referral_route_is_read_only_by_key(template: dict[str, Any]) -> None:
    function = functions(template)["ReadsFunction"]["Properties"]
    event = function["Events"]["GetReferral"]

    assert function["CodeUri"] == "functions/reads/"
    assert (event["Properties"]["Method"], event["Properties"]["Path"]) == ("GET", "/referrals/{referral_id}")
    # The API's JWT authorizer and a partner's scope; role and partner checked in code.
    assert event["Properties"]["Auth"] == {"AuthorizationScopes": ["mci/partner"]}
    assert "dynamodb:GetItem" in EXPECTED_PERMISSIONS["ReadsFunction"][CLAIMS]


# Issue 16: the read and preview routes a partner's session browses, one function; the design card keeps add
# customer, claim customer, consent send and the consent callback each in its own.
GROUPED_READS = {
    ("GET", "/engagements"),
    ("GET", "/locations"),
    ("POST", "/eligibility-checks"),
    ("POST", "/payment-quotes"),
    ("GET", "/known-customers"),
    ("GET", "/engagements/{engagement_id}/customers"),
    ("GET", "/attention-items"),
    ("GET", "/claims/{claim_id}"),
    ("GET", "/referrals/{referral_id}"),
}
SEPARATE_BY_DESIGN = {
    "AddCustomerFunction": {("POST", "/customers")},
    "ClaimCustomerFunction": {("POST", "/known-customers/{customer_id}/claims")},
    "RequestConsentFunction": {("POST", "/claims/{claim_id}/consent-requests")},
    "ConsentPageFunction": {("GET", "/consent/{token}"), ("HEAD", "/consent/{token}"), ("POST", "/consent/{token}")},
}
WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


def test_the_reads_and_previews_are_one_read_only_function_and_the_writes_of_the_design_stay_apart(
    template: dict[str, Any],
) -> None:
    served = {
        logical_id: {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in f["Properties"]["Events"].values()}
        for logical_id, f in functions(template).items()
        if any(e["Type"] == "HttpApi" for e in (f["Properties"].get("Events") or {}).values())
    }
    assert served["ReadsFunction"] == GROUPED_READS
    for logical_id, own in SEPARATE_BY_DESIGN.items():
        assert served[logical_id] == own, logical_id
    grants = {action for actions in EXPECTED_PERMISSIONS["ReadsFunction"].values() for action in actions}
    assert not grants & WRITES
    assert not any("ses:" in action or "events:" in action for action in grants)


# ---------------------------------------------------------------- the cursor signing key (rule 31)


def test_the_cursor_signing_key_is_generated_and_reaches_only_the_paged_reads(template: dict[str, Any]) -> None:
    secret = template["Resources"]["CursorSigningKey"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    assert "SecretString" not in secret["Properties"]  # generated by AWS, never written in the template
    holders = {
        logical_id: resource["Properties"]["Environment"]["Variables"]["CURSOR_SIGNING_KEY"]
        for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items()
        if "CURSOR_SIGNING_KEY" in ((resource["Properties"].get("Environment") or {}).get("Variables") or {})
    }
    # a dynamic reference CloudFormation resolves at deploy, to the secret of this stack
    reference = {"Fn::Sub": "{{resolve:secretsmanager:${CursorSigningKey}:SecretString}}"}
    # the paged routes (Customers page, attention items) live in the grouped read function only (issue 16)
    assert holders == {"ReadsFunction": reference}
    assert "CURSOR_SIGNING_KEY" not in template["Globals"]["Function"]["Environment"]["Variables"]
    # no function may read any secret itself
    policies = [
        r["Properties"].get("Policies") for r in resources_of_type(template, "AWS::Serverless::Function").values()
    ]
    assert '"secretsmanager:' not in json.dumps(policies)
    # the local stack and the tests use a fixed value that is no secret, long enough for the page to start
    local = function_environment(template, "ReadsFunction")["CURSOR_SIGNING_KEY"]
    assert local == local_secret("CursorSigningKey")
    assert len(Settings.from_environ({"CURSOR_SIGNING_KEY": local}).cursor_signing_key.get_secret_value()) >= 16


# ---------------------------------------------------------------- SnapStart, opt-in (issue 16, item 3)


def test_snapstart_is_opt_in_and_every_http_function_publishes_the_alias_its_routes_invoke(
    template: dict[str, Any],
) -> None:
    parameter = template["Parameters"]["EnableSnapStart"]
    assert (parameter["Default"], sorted(parameter["AllowedValues"])) == ("false", ["false", "true"])
    assert template["Conditions"]["SnapStartOn"] == {"Fn::Equals": [{"Ref": "EnableSnapStart"}, "true"]}
    http_functions = 0
    for logical_id, function in functions(template).items():
        properties = function["Properties"]
        events = (properties.get("Events") or {}).values()
        if any(event["Type"] == "HttpApi" for event in events):
            http_functions += 1
            # SAM points the function's HttpApi integrations and invoke permissions at this alias; SAM takes no
            # Fn::If on AutoPublishAlias, so the alias is always there and only SnapStart follows the parameter.
            assert properties["AutoPublishAlias"] == "live", logical_id
            assert properties["SnapStart"] == {"ApplyOn": {"Fn::If": ["SnapStartOn", "PublishedVersions", "None"]}}
        else:
            assert "SnapStart" not in properties, logical_id
            assert "AutoPublishAlias" not in properties, logical_id
    assert http_functions == len([f for f in function_table.FUNCTIONS if f.routes])


def test_every_parameter_of_the_template_is_in_the_deployment_guide() -> None:
    """An operator deploying the stack reads each parameter in docs/deployment.md's table: none added silently."""
    guide = (Path(__file__).resolve().parents[2] / "docs/deployment.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([A-Za-z]+)` \|", guide, flags=re.MULTILINE))
    assert set(load_template()["Parameters"]) - documented == set()
