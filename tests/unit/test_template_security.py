"""template.yaml as a security reviewer reads it (issue 6, item 5): IAM, encryption, alarms, checkov.

What each alarm means and what to do: docs/operations.md. The checkov gate itself is `make security`
(part of `make test`, before pytest): it fails on any failed check and leaves its report in ``CHECKOV_REPORT``.
``test_checkov_finds_no_failed_check`` asserts more on that report (the skips, every function checked), and
runs checkov itself only when the gate's report is not of today's template.yaml, .checkov.yaml and checkov.
"""

from __future__ import annotations

import fnmatch
import io
import json
import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.cloudformation import TEMPLATE_PATH, function_environment, load_template, routes
from local.lambda_runtime import FakeLambdaContext
from local.tokens import OPERATIONS_SCOPE, PARTNER_SCOPE, TokenIssuer, has_any_scope
from mci.domain.expiry import SweepReport
from mci.domain.principal import OPERATIONS_PARTNER_ID
from mci.settings import Settings
from tests.conftest_tiers import in_ci

ROOT = TEMPLATE_PATH.parent
OPERATIONS = ROOT / "docs/operations.md"
CHECKOV = ROOT / ".venv-checkov/bin/checkov"

TOPIC = {"Ref": "AlarmTopic"}
KEY_ARN = {"Fn::GetAtt": ["ObservabilityKey", "Arn"]}
ALARM_NAME_PREFIX = "mci-customers-${Stage}-"
# Actions AWS authorises on no resource but "*": the only Allow on "*" an identity policy may hold.
NO_RESOURCE_LEVEL_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:PutMetricData"}
# ListStreams names no stream: it is authorised on the streams of one table (the publisher's event source mapping).
STREAM_LISTING = ({"dynamodb:ListStreams"}, "${ClaimsTable.Arn}/stream/*")
# What SAM attaches to every role it generates, and why it stays: docs/security.md, section 6.
SAM_MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "logs on '*': fenced by each function's OwnLogGroupOnly Deny",
    "AWSXrayWriteOnlyAccess": "X-Ray (Tracing: Active) has no resource-level permissions",
}
LOG_FENCE_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
HTTP_API_PAYLOAD_LIMIT = 10 * 1024 * 1024
THROTTLING_LIMITS = ("ThrottlingBurstLimit", "ThrottlingRateLimit")
CHECKOV_CONFIG = ROOT / ".checkov.yaml"
# `make security` leaves here checkov's JSON report, its exit status and copies of the two files it read.
CHECKOV_REPORT = ROOT / ".cache/checkov"
CHECKOV_PACKAGES = "pip-freeze.txt"  # in CHECKOV_REPORT: .venv-checkov's `pip freeze` when the gate ran
# Every check skipped (inline, or for every function in .checkov.yaml), and why it cannot apply; a new id needs a
# reason in docs/security.md too.
ALLOWED_SKIPS = {
    "CKV_AWS_115": "concurrency: bounded by API throttling, a stream shard, or reserved (the sweep)",
    "CKV_AWS_116": "Lambda DLQ: synchronous functions have nothing to park; async ones use on-failure destinations",
    "CKV_AWS_117": "VPC: the functions reach only AWS APIs",
    "CKV_AWS_173": "environment KMS: no secret in the environment but the cursor signing key (integrity only)",
    "CKV_AWS_149": "Secrets Manager CMK: the cursor key is read only by CloudFormation at deploy",
    "CKV_AWS_119": "DynamoDB CMK: a stack-owned key would die with the stack while the table is retained",
    "CKV_AWS_27": "SQS KMS: SSE-SQS is on; checkov counts only KmsMasterKeyId",
    "CKV_AWS_18": "S3 access logging: only on the access log bucket itself",
    "CKV_AWS_174": "CloudFront TLS 1.2: the default cloudfront.net certificate has CloudFront's own TLS policy",
    "CKV_AWS_68": "CloudFront WAF: static files only; a CLOUDFRONT web ACL lives in us-east-1 only",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == resource_type}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def sub_text(value: Any) -> str:
    """The text of a !Sub (or a plain string)."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        return str(value["Fn::Sub"])
    return str(value)


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {key: value["Properties"] for key, value in resources_of_type(template, "AWS::CloudWatch::Alarm").items()}


# ---------------------------------------------------------------- least privilege


def identity_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, statement) of every identity policy: functions' inline policies and the stack's roles."""
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties") or {}
        if resource["Type"] == "AWS::Serverless::Function":
            for policy in as_list(properties.get("Policies", [])):
                assert isinstance(policy, dict), f"{logical_id}: a managed policy or policy template"
                for statement in as_list(policy["Statement"]):
                    yield logical_id, statement
        if resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                for statement in as_list(policy["PolicyDocument"]["Statement"]):
                    yield logical_id, statement
            assert not properties.get("ManagedPolicyArns"), f"{logical_id} attaches managed policies"
        assert resource["Type"] not in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}, (
            f"{logical_id}: identity policies live on their function or role, where these tests read them"
        )


def test_no_identity_policy_allows_a_wildcard_resource_but_actions_that_take_none(template: dict[str, Any]) -> None:
    seen = 0
    for owner, statement in identity_statements(template):
        seen += 1
        if statement["Effect"] != "Allow":
            continue
        assert "NotResource" not in statement, f"{owner}: Allow with NotResource is a wildcard"
        assert "NotAction" not in statement, f"{owner}: Allow with NotAction is a wildcard"
        actions = set(as_list(statement["Action"]))
        assert not any("*" in action for action in actions), f"{owner} allows {actions}"
        for resource in as_list(statement["Resource"]):
            text = sub_text(resource)
            if (actions, text) == STREAM_LISTING:
                continue
            if "*" in text:
                # A table, index, queue, bus, identity or log group can be named: only these cannot.
                assert resource == "*", f"{owner} allows {actions} on {text}"
                assert actions <= NO_RESOURCE_LEVEL_ACTIONS, f"{owner} allows {actions} on {text}"
    # Not vacuous: every function's fence and at least one Allow were seen, and the hand-written roles' (39 in all
    # since issue 16 grouped nine read functions into one; 57 before).
    assert seen > 2 * len(resources_of_type(template, "AWS::Serverless::Function"))
    assert seen >= 39


def test_sam_generated_roles_write_only_to_their_own_log_group(template: dict[str, Any]) -> None:
    """SAM attaches AWSLambdaBasicExecutionRole (logs on "*") to the roles it generates: a Deny fences it."""
    groups = resources_of_type(template, "AWS::Logs::LogGroup")
    fenced = 0
    for logical_id, function in resources_of_type(template, "AWS::Serverless::Function").items():
        properties = function["Properties"]
        folder = properties["CodeUri"].removeprefix("functions/").rstrip("/")
        # Named, so that its log group and the fence can be named without a cycle through the role.
        assert properties["FunctionName"] == {"Fn::Sub": f"mci-customers-${{Stage}}-{folder.replace('_', '-')}"}, (
            logical_id
        )
        if "Role" in properties:
            continue  # its own role, no managed policy (test_the_publisher_has_its_own_role_and_no_managed_policy)
        denies = [s for s in as_list(properties["Policies"][0]["Statement"]) if s["Effect"] == "Deny"]
        assert len(denies) == 1, f"{logical_id} needs the OwnLogGroupOnly Deny"
        deny = denies[0]
        assert deny["Sid"] == "OwnLogGroupOnly"
        assert set(deny["Action"]) == LOG_FENCE_ACTIONS
        group_id = deny["NotResource"]["Fn::GetAtt"][0]
        assert deny["NotResource"] == {"Fn::GetAtt": [group_id, "Arn"]}
        assert groups[group_id]["Properties"]["LogGroupName"] == {
            "Fn::Sub": f"/aws/lambda/{properties['FunctionName']['Fn::Sub']}"
        }, logical_id
        fenced += 1
    assert fenced == len(resources_of_type(template, "AWS::Serverless::Function")) - 1
    # Tracing stays on everywhere: the X-Ray policy SAM adds is the only other managed policy.
    assert template["Globals"]["Function"]["Tracing"] == "Active"
    assert set(SAM_MANAGED_POLICIES) == {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}


def test_resource_policies_grant_services_only_on_this_stacks_behalf(template: dict[str, Any]) -> None:
    documents = [
        (key, value["Properties"]["PolicyDocument"])
        for key, value in template["Resources"].items()
        if value["Type"] in {"AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"}
    ]
    keys = resources_of_type(template, "AWS::KMS::Key")
    documents += [(key, value["Properties"]["KeyPolicy"]) for key, value in keys.items()]
    assert len(documents) == 5
    for owner, document in documents:
        for statement in document["Statement"]:
            if statement["Effect"] == "Deny":
                assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, owner
                continue
            principal = statement["Principal"]
            assert principal != "*", f"{owner} allows anyone"
            if "Service" in principal:
                # A service acts for this stack only: a rule, an alarm or a log group of it.
                assert "Condition" in statement, f"{owner}: {principal} unconditioned"
            else:
                assert principal == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}, owner


# ---------------------------------------------------------------- scopes (issue 12 item 7, rule 30)


def _token_claims(issuer: TokenIssuer, partner_id: str, roles: list[str], forged_roles: Any = None) -> dict[str, Any]:
    """The claims the authorizer verifies for a token the local identity provider issued for ``roles``, its
    roles claim then replaced by ``forged_roles`` (its scopes stay those of ``roles``)."""
    extra = {} if forged_roles is None else {"roles": forged_roles}
    return issuer.verify(issuer.issue(partner_id, roles, extra_claims=extra))


def test_every_authorized_route_needs_the_scope_of_its_callers(template: dict[str, Any]) -> None:
    """Operations routes need mci/operations, every other authorized route mci/partner; public ones none."""
    for route in routes(template):
        key = f"{route.method} {route.path}"
        if not route.authorized:
            assert route.scopes == (), key
        elif route.path.startswith("/ops/"):
            assert route.scopes == (OPERATIONS_SCOPE,), key
        else:
            assert route.scopes == (PARTNER_SCOPE,), key


def test_a_forged_roles_claim_without_the_operations_scope_cannot_reach_an_operations_route(
    template: dict[str, Any],
) -> None:
    """A partner's token whose roles claim names mci_operations, in any shape, still lacks the scope the
    identity provider issues only for operations: API Gateway refuses it before the handler (403)."""
    issuer = TokenIssuer("https://issuer.example/_local")
    ops_routes = [route for route in routes(template) if route.path.startswith("/ops/")]
    assert len(ops_routes) == 2
    forged = ["mci_operations", ["mci_operations"], "[mci_operations]", ["incentives_admin", "mci_operations"]]
    for route in ops_routes:
        for roles in forged:
            claims = _token_claims(issuer, "p-contoso-partners", ["incentives_admin"], roles)
            assert not has_any_scope(claims, route.scopes), (route.path, roles)
        operations = _token_claims(issuer, OPERATIONS_PARTNER_ID, ["mci_operations"])
        assert has_any_scope(operations, route.scopes), route.path
    for route in routes(template):
        if route.authorized and not route.path.startswith("/ops/"):
            claims = _token_claims(issuer, OPERATIONS_PARTNER_ID, ["mci_operations"], ["incentives_admin"])
            assert not has_any_scope(claims, route.scopes), (route.path, "an operations token with a forged role")


# ---------------------------------------------------------------- encryption


def test_every_log_group_is_encrypted_with_the_stack_key_which_admits_only_them(template: dict[str, Any]) -> None:
    key = template["Resources"]["ObservabilityKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    logs = next(s for s in key["KeyPolicy"]["Statement"] if s["Sid"] == "CloudWatchLogsOfThisStack")
    assert logs["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    patterns = [sub_text(p) for p in logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]]
    prefix = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
    groups = resources_of_type(template, "AWS::Logs::LogGroup")
    assert len(groups) == len(resources_of_type(template, "AWS::Serverless::Function")) + 1  # and the access log
    for logical_id, group in groups.items():
        properties = group["Properties"]
        assert properties["KmsKeyId"] == KEY_ARN, logical_id
        arn = prefix + sub_text(properties["LogGroupName"])
        assert any(fnmatch.fnmatchcase(arn, pattern) for pattern in patterns), f"the key refuses {logical_id}"


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(template: dict[str, Any]) -> None:
    topic = template["Resources"]["AlarmTopic"]["Properties"]
    # Not alias/aws/sns: CloudWatch cannot publish to a topic under the AWS managed key.
    assert topic["KmsMasterKeyId"] == KEY_ARN
    key = template["Resources"]["ObservabilityKey"]["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = next(s for s in key if s["Sid"] == "CloudWatchAlarmsOfThisStack")
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    policy = template["Resources"]["AlarmTopicPolicy"]["Properties"]
    assert policy["Topics"] == [TOPIC]
    publish = next(s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow")
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Action"] == "sns:Publish"
    # Only this stack's alarms, by name: every alarm's name must match (next test).
    alarm_arn = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:mci-customers-${Stage}-*"
    for statement in (cloudwatch, publish):
        assert statement["Condition"] == {
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
            "ArnLike": {"aws:SourceArn": {"Fn::Sub": alarm_arn}},
        }


def test_an_email_address_can_subscribe_to_the_alarms(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["AlarmEmail"]
    pattern = re.compile(parameter["AllowedPattern"])
    assert parameter["Default"] == ""
    assert all(pattern.fullmatch(v) for v in ("", "ops@example.com", "mci.oncall+prod@contoso.example"))
    assert not any(pattern.fullmatch(v) for v in ("ops", "ops@", "a b@example.com", "@example.com"))
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert template["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert subscription["Properties"] == {"TopicArn": TOPIC, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}
    assert template["Outputs"]["AlarmTopicArn"]["Value"] == TOPIC


# ---------------------------------------------------------------- alarms


def test_every_alarm_notifies_the_topic_both_ways_and_says_what_to_do(template: dict[str, Any]) -> None:
    operations = OPERATIONS.read_text(encoding="utf-8")
    headings = set(re.findall(r"^### (\w+)$", operations, flags=re.MULTILINE))
    found = alarms(template)
    assert len(found) >= 12
    for logical_id, alarm in found.items():
        assert alarm["AlarmActions"] == [TOPIC], logical_id
        assert alarm["OKActions"] == [TOPIC], logical_id
        assert alarm.get("ActionsEnabled", True) is True, logical_id
        # Chosen per alarm, never CloudWatch's default (missing): the template comment says why.
        assert alarm["TreatMissingData"] in {"notBreaching", "breaching"}, logical_id
        assert sub_text(alarm["AlarmName"]).startswith(ALARM_NAME_PREFIX), logical_id
        assert f"Runbook: docs/operations.md#{logical_id.lower()}" in alarm["AlarmDescription"], logical_id
        assert logical_id in headings, f"docs/operations.md has no section '### {logical_id}'"
    assert headings >= set(found)


def single_metric(alarm: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
    return alarm["Namespace"], alarm["MetricName"], dimensions


def test_the_api_5xx_rate_alarm_fires_at_one_percent_of_at_least_twenty_requests(template: dict[str, Any]) -> None:
    alarm = alarms(template)["HttpApi5xxRateAlarm"]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}

    assert metrics["rate"]["Expression"] == "IF(requests >= 20, 100 * FILL(errors, 0) / requests, 0)"
    assert [m["Id"] for m in alarm["Metrics"] if m["ReturnData"]] == ["rate"]
    for metric_id, name in (("errors", "5xx"), ("requests", "Count")):
        stat = metrics[metric_id]["MetricStat"]
        assert stat["Metric"] == {
            "Namespace": "AWS/ApiGateway",
            "MetricName": name,
            "Dimensions": [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}],
        }
        assert (stat["Period"], stat["Stat"]) == (300, "Sum")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"


def dead_letter_queues(template: dict[str, Any]) -> set[str]:
    """Every queue the template names as a DLQ or on-failure destination, anywhere."""
    found: set[str] = set()

    def queue_of(arn: Any) -> None:
        if isinstance(arn, dict) and "Fn::GetAtt" in arn:
            logical_id = arn["Fn::GetAtt"][0]
            if template["Resources"].get(logical_id, {}).get("Type") == "AWS::SQS::Queue":
                found.add(logical_id)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            queue_of((node.get("DeadLetterConfig") or {}).get("Arn"))
            queue_of((node.get("DeadLetterQueue") or {}).get("TargetArn"))
            queue_of(((node.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"))
            queue_of((node.get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(template["Resources"])
    return found


def queues_without_an_alarm(template: dict[str, Any]) -> set[str]:
    watched = set()
    for alarm in alarms(template).values():
        if "Namespace" not in alarm:
            continue
        namespace, name, dimensions = single_metric(alarm)
        if (namespace, name) != ("AWS/SQS", "ApproximateNumberOfMessagesVisible"):
            continue
        # Any message at all: a DLQ holds work the service could not do.
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
        assert alarm["Statistic"] == "Maximum"
        assert alarm["TreatMissingData"] == "notBreaching"  # SQS stops reporting an idle, empty queue
        watched.add(dimensions["QueueName"]["Fn::GetAtt"][0])
        assert dimensions["QueueName"]["Fn::GetAtt"][1] == "QueueName"
    return dead_letter_queues(template) - watched


def test_every_dead_letter_queue_has_an_alarm(template: dict[str, Any]) -> None:
    queues = dead_letter_queues(template)

    # The sweep's (Scheduler and Lambda on-failure), the publisher's (stream on-failure) and the SES
    # feedback's (EventBridge rule DLQ and Lambda on-failure); every queue of the stack is one of them.
    assert queues == {"ExpirySweepDeadLetterQueue", "PublishEventsDeadLetterQueue", "SesFeedbackDeadLetterQueue"}
    assert queues == set(resources_of_type(template, "AWS::SQS::Queue"))
    assert queues_without_an_alarm(template) == set()


def test_a_dead_letter_queue_added_without_an_alarm_is_found(template: dict[str, Any]) -> None:
    template = json.loads(json.dumps(template))
    template["Resources"]["NewDeadLetterQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    template["Resources"]["NewFunction"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Events": {
                "Rule": {
                    "Type": "EventBridgeRule",
                    "Properties": {"DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["NewDeadLetterQueue", "Arn"]}}},
                }
            }
        },
    }

    assert queues_without_an_alarm(template) == {"NewDeadLetterQueue"}


def test_sweep_errors_and_failures_alarm(template: dict[str, Any]) -> None:
    found = alarms(template)

    errors = found["ExpireClaimsErrorsAlarm"]
    assert single_metric(errors) == ("AWS/Lambda", "Errors", {"FunctionName": {"Ref": "ExpireClaimsFunction"}})
    assert (errors["Statistic"], errors["Period"], errors["EvaluationPeriods"]) == ("Sum", 300, 1)
    assert (errors["ComparisonOperator"], errors["Threshold"]) == ("GreaterThanThreshold", 0)

    failed = found["ExpireClaimsFailedClaimsAlarm"]
    assert single_metric(failed) == ({"Fn::Sub": "MciCustomers/${Stage}"}, "SweepFailedClaims", {})
    # Each run retries what failed: three failing runs in a row, not one, are an outage.
    assert (failed["Period"], failed["EvaluationPeriods"], failed["DatapointsToAlarm"]) == (300, 3, 3)
    assert (failed["ComparisonOperator"], failed["Threshold"]) == ("GreaterThanThreshold", 0)

    stalled = found["ExpirySweepStalledAlarm"]
    assert single_metric(stalled) == ({"Fn::Sub": "MciCustomers/${Stage}"}, "SweepRuns", {})
    assert (stalled["ComparisonOperator"], stalled["Threshold"]) == ("LessThanThreshold", 1)
    assert (stalled["Period"], stalled["EvaluationPeriods"]) == (300, 3)
    # No run, no log line, no data: missing data is the signal.
    assert stalled["TreatMissingData"] == "breaching"


def test_a_sweep_that_defers_in_every_run_of_an_hour_alarms(template: dict[str, Any]) -> None:
    """SES answers a spent daily quota with the throttling error a run defers on: every run would defer, forever,
    with no failure. The smallest `deferred` of an hour's runs above 0 (each run one datapoint) is that; one
    throttled run, or a backlog that drains, is not. No run, no data: ExpirySweepStalledAlarm's signal, not this."""
    deferred = alarms(template)["ExpireClaimsDeferredClaimsAlarm"]
    assert single_metric(deferred) == ({"Fn::Sub": "MciCustomers/${Stage}"}, "SweepDeferredClaims", {})
    assert (deferred["Statistic"], deferred["Period"], deferred["EvaluationPeriods"]) == ("Minimum", 3600, 1)
    assert (deferred["ComparisonOperator"], deferred["Threshold"]) == ("GreaterThanThreshold", 0)
    assert deferred["TreatMissingData"] == "notBreaching"


def filter_matches(pattern: str, event: dict[str, Any]) -> bool:
    """CloudWatch Logs JSON filter of the form ``{ $.field = "text" }``: the only form the template uses."""
    match = re.fullmatch(r'\{ \$\.(\w+) = "([^"]*)" \}', pattern)
    assert match, f"unsupported filter pattern {pattern}"
    return bool(event.get(match.group(1)) == match.group(2))


def sweep_log_line(monkeypatch: pytest.MonkeyPatch, report: SweepReport) -> dict[str, Any]:
    """The JSON line the real sweep handler logs at the end of a run."""
    import functions.expire_claims.app as sweep_app

    class FakeSweep:
        def run(self, correlation_id: str | None = None, remaining: Any = None) -> SweepReport:
            return report

    monkeypatch.setattr(sweep_app, "sweep", FakeSweep)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(sweep_app.logger.registered_formatter)
    level = sweep_app.logger.getEffectiveLevel()
    sweep_app.logger.addHandler(handler)
    sweep_app.logger.setLevel("INFO")
    try:
        sweep_app.lambda_handler({}, FakeLambdaContext("ExpireClaimsFunction"))  # type: ignore[arg-type]
    finally:
        sweep_app.logger.removeHandler(handler)
        sweep_app.logger.setLevel(level)
    lines = [json.loads(text) for text in stream.getvalue().splitlines()]
    (line,) = [line for line in lines if line["message"] == "sweep finished"]  # after one "poison item" each
    return dict(line)


def test_the_sweep_metric_filters_read_the_line_the_sweep_logs(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    report = SweepReport(examined=7, expired=2, reminded=3, failed=2)
    report.defer("c-deferred")
    line = sweep_log_line(monkeypatch, report)
    filters = resources_of_type(template, "AWS::Logs::MetricFilter")

    assert {f["Properties"]["MetricTransformations"][0]["MetricName"] for f in filters.values()} == {
        "SweepRuns",
        "SweepFailedClaims",
        "SweepDeferredClaims",
        "SweepPoisonItems",
        "SweepLagSeconds",
        "PublishPoisonRecords",
    }
    for metric_filter in filters.values():
        properties = metric_filter["Properties"]
        if properties["MetricTransformations"][0]["MetricName"] == "PublishPoisonRecords":
            continue  # the publisher's: test_poison_items_and_records_alarm_on_the_lines_logged_for_them
        assert properties["LogGroupName"] == {"Ref": "ExpireClaimsLogGroup"}
        assert filter_matches(properties["FilterPattern"], line)
        assert not filter_matches(properties["FilterPattern"], {**line, "message": "unexpected error"})
        (transformation,) = properties["MetricTransformations"]
        assert transformation["MetricNamespace"] == {"Fn::Sub": "MciCustomers/${Stage}"}
        value = transformation["MetricValue"]
        if transformation["MetricName"] == "SweepFailedClaims":
            assert value == "$.failed"
            assert line[value.removeprefix("$.")] == 2
        elif transformation["MetricName"] == "SweepPoisonItems":
            assert value == "$.poisoned"
            assert line[value.removeprefix("$.")] == 0
        elif transformation["MetricName"] == "SweepDeferredClaims":
            assert value == "$.deferred"
            assert line[value.removeprefix("$.")] == 1
        elif transformation["MetricName"] == "SweepLagSeconds":
            assert value == "$.lag_seconds"
            assert line[value.removeprefix("$.")] == 0
        else:
            assert value == "1"


def test_poison_items_and_records_alarm_on_the_lines_logged_for_them(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 29: an item the sweep gives up, or a record the publisher passes over, fires an alarm at once."""
    report = SweepReport(examined=2, reminded=1)
    report.poisoned_item("c-1", "consent_reminder", "email_rejected")
    line = sweep_log_line(monkeypatch, report)
    assert line["poisoned"] == 1
    filters = {
        f["Properties"]["MetricTransformations"][0]["MetricName"]: f["Properties"]
        for f in resources_of_type(template, "AWS::Logs::MetricFilter").values()
    }
    sweep_filter = filters["SweepPoisonItems"]
    assert sweep_filter["LogGroupName"] == {"Ref": "ExpireClaimsLogGroup"}
    assert filter_matches(sweep_filter["FilterPattern"], line)
    assert sweep_filter["MetricTransformations"][0]["MetricValue"] == "$.poisoned"
    publisher_filter = filters["PublishPoisonRecords"]
    assert publisher_filter["LogGroupName"] == {"Ref": "PublishEventsLogGroup"}
    assert filter_matches(publisher_filter["FilterPattern"], {"message": "poison record", "reason": "unreadable"})
    assert not filter_matches(publisher_filter["FilterPattern"], {"message": "stream batch"})

    found = alarms(template)
    for alarm_id, metric in [
        ("ExpireClaimsPoisonItemsAlarm", "SweepPoisonItems"),
        ("PublishEventsPoisonRecordsAlarm", "PublishPoisonRecords"),
    ]:
        alarm = found[alarm_id]
        assert single_metric(alarm) == ({"Fn::Sub": "MciCustomers/${Stage}"}, metric, {})
        assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1)
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_ses_reputation_alarms_fire_at_two_percent_bounces_and_half_a_permille_complaints(
    template: dict[str, Any],
) -> None:
    found = alarms(template)
    configuration_set = {"ses:configuration-set": {"Ref": "ConsentConfigurationSet"}}
    expected = {
        # The account's rates are what SES enforces; the configuration set's are this stack's share.
        "SesBounceRateAlarm": ("Reputation.BounceRate", {}, 0.02),
        "SesComplaintRateAlarm": ("Reputation.ComplaintRate", {}, 0.0005),
        "SesConfigurationSetBounceRateAlarm": ("Reputation.BounceRate", configuration_set, 0.02),
        "SesConfigurationSetComplaintRateAlarm": ("Reputation.ComplaintRate", configuration_set, 0.0005),
    }
    for logical_id, (metric, dimensions, threshold) in expected.items():
        alarm = found[logical_id]
        assert single_metric(alarm) == ("AWS/SES", metric, dimensions), logical_id
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", threshold)
        assert alarm["Statistic"] == "Maximum"
    # The configuration set publishes its own rates only with reputation metrics on.
    ses = template["Resources"]["ConsentConfigurationSet"]["Properties"]
    assert ses["ReputationOptions"] == {"ReputationMetricsEnabled": True}


def test_the_publisher_falling_behind_alarms_long_before_its_queue_would(template: dict[str, Any]) -> None:
    alarm = alarms(template)["PublishEventsIteratorAgeAlarm"]
    stream = template["Resources"]["PublishEventsFunction"]["Properties"]["Events"]["ClaimsStream"]["Properties"]

    assert single_metric(alarm) == ("AWS/Lambda", "IteratorAge", {"FunctionName": {"Ref": "PublishEventsFunction"}})
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Threshold"] == 15 * 60 * 1000  # milliseconds
    assert alarm["Threshold"] < stream["MaximumRecordAgeInSeconds"] * 1000


# ---------------------------------------------------------------- throttling and request size


def test_the_public_consent_routes_have_the_lowest_limits_of_the_api(template: dict[str, Any]) -> None:
    settings: dict[tuple[str, str], dict[str, int]] = {}
    for function in resources_of_type(template, "AWS::Serverless::Function").values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                properties = event["Properties"]
                # A route without RouteSettings has the API's default.
                default = template["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"]
                limits = properties.get("RouteSettings") or {key: default[key] for key in THROTTLING_LIMITS}
                settings[(properties["Method"], properties["Path"])] = limits
    public = {(route.method, route.path) for route in routes(template) if not route.authorized}

    assert public == {("GET", "/consent/{token}"), ("HEAD", "/consent/{token}"), ("POST", "/consent/{token}")}
    # The decision (a write, and an email to the partner) lowest of all; the page below every partner read.
    assert settings[("POST", "/consent/{token}")] == {"ThrottlingBurstLimit": 10, "ThrottlingRateLimit": 5}
    for key in public - {("POST", "/consent/{token}")}:
        assert settings[key] == {"ThrottlingBurstLimit": 20, "ThrottlingRateLimit": 10}, key
    partner_reads = [limits for key, limits in settings.items() if key[0] == "GET" and key not in public]
    assert partner_reads
    assert all(limits["ThrottlingRateLimit"] > 10 for limits in partner_reads)


def test_the_operations_routes_are_throttled_at_or_below_the_api_default(template: dict[str, Any]) -> None:
    default = template["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"]
    settings: dict[tuple[str, str], dict[str, int]] = {}
    for function in resources_of_type(template, "AWS::Serverless::Function").values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi" and event["Properties"]["Path"].startswith("/ops/"):
                properties = event["Properties"]
                settings[(properties["Method"], properties["Path"])] = properties.get("RouteSettings", {})

    assert set(settings) == {("POST", "/ops/reference-data"), ("POST", "/ops/claims/{claim_id}/review")}
    for key, limits in settings.items():
        # Both limits set on the route itself (not inherited), and within the stage default.
        assert {"ThrottlingBurstLimit", "ThrottlingRateLimit"} <= set(limits), key
        assert 0 < limits["ThrottlingBurstLimit"] <= default["ThrottlingBurstLimit"], key
        assert 0 < limits["ThrottlingRateLimit"] <= default["ThrottlingRateLimit"], key
        assert limits["ThrottlingRateLimit"] <= limits["ThrottlingBurstLimit"], key
    # A reference-data load rewrites the programme's rules: the lowest budget of the two.
    assert settings[("POST", "/ops/reference-data")] == {"ThrottlingBurstLimit": 5, "ThrottlingRateLimit": 2}
    assert settings[("POST", "/ops/claims/{claim_id}/review")] == {
        "ThrottlingBurstLimit": 20,
        "ThrottlingRateLimit": 10,
    }


def test_request_bodies_are_limited_far_below_the_http_api_payload_limit(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]

    assert variables["MAX_BODY_BYTES"] == "65536"
    for route in routes(template):
        limit = Settings.from_environ(function_environment(template, route.function)).max_body_bytes
        assert limit == 64 * 1024 < HTTP_API_PAYLOAD_LIMIT, route
    # The resolver answers 413 above it, before parsing:
    # tests/moto/test_bad_input.py::test_a_body_over_the_limit_is_413.
    assert Settings().max_body_bytes == 64 * 1024


# ---------------------------------------------------------------- checkov


def inline_skips(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    skips: dict[tuple[str, str], str] = {}
    for logical_id, resource in template["Resources"].items():
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
            skips[(logical_id, skip["id"])] = skip.get("comment", "")
    return skips


def config_skips() -> dict[str, str]:
    """Check id -> the comment above it in .checkov.yaml's skip-check list (its reason)."""
    skips: dict[str, str] = {}
    comment: list[str] = []
    for line in CHECKOV_CONFIG.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if line.startswith("  #"):
            comment.append(stripped.removeprefix("#").strip())
        elif stripped.startswith("- "):
            skips[stripped.removeprefix("- ")] = " ".join(comment)
            comment = []
        else:
            comment = []
    return skips


# The checks .checkov.yaml skips: only Lambda checks, each holding for every function of the stack.
FUNCTION_WIDE_SKIPS = {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"}


def test_every_checkov_skip_is_known_and_gives_a_reason(template: dict[str, Any]) -> None:
    skips = inline_skips(template)

    assert skips
    for (logical_id, check_id), comment in skips.items():
        assert check_id in ALLOWED_SKIPS, f"{logical_id} skips {check_id}: add it to ALLOWED_SKIPS and docs/security.md"
        assert check_id not in FUNCTION_WIDE_SKIPS, f"{logical_id} skips {check_id}, which .checkov.yaml skips already"
        assert len(comment.split()) >= 12, f"{logical_id} skips {check_id} without a real reason"
    # The skips that hold for every function: in .checkov.yaml, each with its reason (the comment above it).
    configured = config_skips()
    assert set(configured) == FUNCTION_WIDE_SKIPS <= set(ALLOWED_SKIPS)
    assert yaml.safe_load(CHECKOV_CONFIG.read_text(encoding="utf-8")) == {"skip-check": list(configured)}
    for check_id, reason in configured.items():
        assert reason.startswith(check_id), f".checkov.yaml: the reason above {check_id} names another check"
        assert len(reason.split()) >= 25, f".checkov.yaml skips {check_id} without a real reason"
    # No other way to skip: no other config file, no --skip-check in the gate, which reads this file.
    assert [path.name for path in ROOT.glob(".checkov.y*ml")] == [CHECKOV_CONFIG.name]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--skip-check" not in makefile
    assert "security:" in makefile
    assert "--config-file .checkov.yaml" in makefile
    assert re.search(r"^test: .*\bsecurity\b", makefile, flags=re.MULTILINE)


def installed_checkov() -> str | None:
    """``pip freeze`` of .venv-checkov (checkov's version and every package it runs with), or None without it."""
    try:
        completed = subprocess.run(
            [str(CHECKOV.parent / "pip"), "freeze"], capture_output=True, text=True, timeout=120, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout


def gate_report(
    folder: Path = CHECKOV_REPORT, checkov: Callable[[], str | None] = installed_checkov
) -> tuple[int, dict[str, Any]] | None:
    """(exit status, JSON report) of the gate's checkov run, if it read today's template.yaml and .checkov.yaml
    with the checkov installed now (``checkov()``: the same ``pip freeze``)."""
    try:
        read = {source: (folder / source.name).read_bytes() for source in (TEMPLATE_PATH, CHECKOV_CONFIG)}
        if any(copy != source.read_bytes() for source, copy in read.items()):
            return None
        packages = checkov()
        if packages is None or (folder / CHECKOV_PACKAGES).read_text() != packages:
            return None
        return int((folder / "exit-status").read_text()), json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return None


def run_checkov() -> tuple[int, dict[str, Any]]:
    """checkov as the gate runs it, here: (exit status, JSON report)."""
    completed = subprocess.run(
        [
            *(str(CHECKOV), "--config-file", str(CHECKOV_CONFIG), "--file", str(TEMPLATE_PATH)),
            *("--framework", "cloudformation", "--skip-download", "-o", "json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        cwd=ROOT,
    )
    return completed.returncode, json.loads(completed.stdout)


def test_the_gate_leaves_the_report_this_module_reads(tmp_path: Path) -> None:
    """`make security` writes its full report (no --quiet, which drops passed and skipped checks) with the files it
    read; a report of other files is never reused."""
    recipe = re.search(r"^security:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE)
    assert recipe is not None
    commands = recipe.group(1).replace("\\\n", " ")
    assert "CHECKOV_REPORT := .cache/checkov" in (ROOT / "Makefile").read_text(encoding="utf-8")
    assert ROOT / ".cache/checkov" == CHECKOV_REPORT
    assert "cp template.yaml .checkov.yaml $(CHECKOV_REPORT)/" in commands
    assert "--output cli --output json --output-file-path console,$(CHECKOV_REPORT)/report.json" in commands
    assert "echo $$status > $(CHECKOV_REPORT)/exit-status; exit $$status" in commands
    assert "--quiet" not in commands

    write_a_gate_report(tmp_path)
    assert gate_report(tmp_path, checkov=lambda: GATE_CHECKOV) == (0, {"results": {"failed_checks": []}})
    (tmp_path / "template.yaml").write_bytes(TEMPLATE_PATH.read_bytes() + b"\n# changed since\n")
    assert gate_report(tmp_path, checkov=lambda: GATE_CHECKOV) is None
    assert gate_report(tmp_path / "never-written", checkov=lambda: GATE_CHECKOV) is None


GATE_CHECKOV = "bc-python-hcl2==0.4.3\ncheckov==3.3.30\ncfn-lint==1.38.0\n"


def write_a_gate_report(folder: Path) -> None:
    """What `make security` leaves: today's two files, a passing report, and GATE_CHECKOV as checkov's freeze."""
    for source in (TEMPLATE_PATH, CHECKOV_CONFIG):
        (folder / source.name).write_bytes(source.read_bytes())
    (folder / "exit-status").write_text("0\n")
    (folder / "report.json").write_text('{"results": {"failed_checks": []}}')
    (folder / CHECKOV_PACKAGES).write_text(GATE_CHECKOV)


@pytest.mark.parametrize(
    "installed",
    [
        "bc-python-hcl2==0.4.3\ncheckov==3.3.31\ncfn-lint==1.38.0\n",  # another checkov
        "bc-python-hcl2==0.4.3\ncheckov==3.3.30\ncfn-lint==1.39.0\n",  # the same checkov on another cfn-lint
        None,  # no checkov to compare with
    ],
)
def test_a_report_of_another_checkov_is_never_reused(tmp_path: Path, installed: str | None) -> None:
    """The gate's report is keyed on checkov's environment (`pip freeze` of .venv-checkov) besides the two files."""
    recipe = re.search(r"^security:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE)
    assert recipe is not None
    assert f"$(CHECKOV_VENV)/bin/pip freeze > $(CHECKOV_REPORT)/{CHECKOV_PACKAGES} &&" in recipe.group(1)

    write_a_gate_report(tmp_path)
    assert gate_report(tmp_path, checkov=lambda: GATE_CHECKOV) is not None
    assert gate_report(tmp_path, checkov=lambda: installed) is None


def test_checkov_finds_no_failed_check(template: dict[str, Any]) -> None:
    if not CHECKOV.exists():
        if in_ci():
            pytest.fail("checkov missing in CI: `make test` runs `make security` first, which installs it")
        pytest.skip("checkov tier skipped: .venv-checkov missing (`make security` creates it)")
    returncode, report = gate_report() or run_checkov()
    results = report["results"]

    assert [(c["resource"], c["check_id"]) for c in results["failed_checks"]] == []
    assert returncode == 0
    skipped = {(c["resource"].split(".", 1)[1], c["check_id"]) for c in results["skipped_checks"]}
    assert skipped == set(inline_skips(template))
    # Not vacuous: every function was checked (65 checks pass since issue 16 grouped nine read functions into
    # one; 80 and more before).
    checked = {c["resource"].split(".", 1)[1] for c in results["passed_checks"]}
    assert set(resources_of_type(template, "AWS::Serverless::Function")) <= checked
    assert report["summary"]["passed"] >= 65


@pytest.mark.parametrize(
    ("document", "at_least"),
    [("docs/operations.md", 20), ("docs/security.md", 100), ("docs/events.md", 1), ("docs/testing.md", 0)],
)
def test_every_test_a_doc_names_exists(document: str, at_least: int) -> None:
    """The docs name the test behind each claim (``path::test_name``): each must be a test of that file."""
    named = set(re.findall(r"(tests/[\w/]+\.py)::(?:\w+::)?(test_\w+)", (ROOT / document).read_text(encoding="utf-8")))

    assert len(named) >= at_least
    for path, function in sorted(named):
        source = (ROOT / path).read_text(encoding="utf-8")
        # A test class may inherit its tests from a shared contract in tests/support (the repository contract).
        for module in re.findall(r"^from tests\.support\.(\w+) import", source, flags=re.MULTILINE):
            source += (ROOT / "tests/support" / f"{module}.py").read_text(encoding="utf-8")
        found = re.search(rf"^(    )?def {function}\(", source, flags=re.MULTILINE)
        assert found, f"{document}: {path}::{function} is gone"
