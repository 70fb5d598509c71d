"""Issue 14 on AWS: the web app from a private S3 bucket behind CloudFront, as template.yaml declares it.

The bucket is private and read only by the distribution (origin access control); the distribution is HTTPS
only and sends the headers ``local/webapp.py`` sends (its CSP, with the API's and the issuer's origins in
``connect-src``), plus HSTS; the HTTP API's CORS admits that distribution's origin only. docs/web.md#on-aws.
The publish target is tested in tests/moto/test_publish_web.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from local.cloudformation import load_template
from local.pages import security_headers
from local.web_files import CONTENT_SECURITY_POLICY

APP_BUCKET = "WebAppBucket"
LOG_BUCKET = "WebAppLogBucket"
DISTRIBUTION = "WebAppDistribution"
HEADERS_POLICY = "WebAppResponseHeadersPolicy"
DISTRIBUTION_ARN = "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${WebAppDistribution}"
DISTRIBUTION_ORIGIN = {"Fn::Sub": "https://${WebAppDistribution.DomainName}"}
API_JS = Path(__file__).resolve().parents[2] / "web" / "js" / "api.js"
PARAMETERS = {
    "PublicBaseUrl": "https://customers.example.com",
    "JwtIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
    "WebAuthOrigins": "",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return properties


def evaluate(value: Any, parameters: dict[str, str], conditions: dict[str, Any]) -> Any:
    """The value of the intrinsics the hosting section uses (Ref to a parameter, Sub, Join, Select, Split, If)."""
    if not isinstance(value, dict):
        return value
    ((function, argument),) = value.items()
    if function == "Ref":
        return parameters[argument]
    if function == "Fn::Join":
        separator, items = argument
        return separator.join(evaluate(item, parameters, conditions) for item in items)
    if function == "Fn::Select":
        index, items = argument
        return evaluate(items, parameters, conditions)[int(index)]
    if function == "Fn::Split":
        separator, text = argument
        return evaluate(text, parameters, conditions).split(separator)
    if function == "Fn::If":
        name, when_true, when_false = argument
        holds = evaluate(conditions[name], parameters, conditions)
        return evaluate(when_true if holds else when_false, parameters, conditions)
    if function == "Fn::Not":
        return not evaluate(argument[0], parameters, conditions)
    if function == "Fn::Equals":
        left, right = argument
        return evaluate(left, parameters, conditions) == evaluate(right, parameters, conditions)
    if function == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: evaluate(item, parameters, conditions) for name, item in variables.items()}
        return re.sub(r"\$\{([^}]+)\}", lambda match: values.get(match.group(1), parameters.get(match.group(1))), text)
    raise AssertionError(f"unexpected intrinsic {function}")


def aws_csp(template: dict[str, Any], parameters: dict[str, str]) -> str:
    config = resource(template, HEADERS_POLICY)["ResponseHeadersPolicyConfig"]
    policy = config["SecurityHeadersConfig"]["ContentSecurityPolicy"]
    assert policy["Override"] is True
    text = evaluate(policy["ContentSecurityPolicy"], parameters, template["Conditions"])
    assert isinstance(text, str)
    return text


def local_csp_connecting_to(*origins: str) -> str:
    assert "connect-src 'self';" in CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace("connect-src 'self';", f"connect-src 'self' {' '.join(origins)};")


def test_the_app_bucket_is_private_encrypted_versioned_and_logged(template: dict[str, Any]) -> None:
    buckets = {key for key, value in template["Resources"].items() if value["Type"] == "AWS::S3::Bucket"}
    assert buckets == {APP_BUCKET, LOG_BUCKET}
    for logical_id in buckets:
        bucket = resource(template, logical_id)
        assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
            ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
        ), logical_id
        assert "AccessControl" not in bucket, logical_id
        assert "WebsiteConfiguration" not in bucket, f"{logical_id}: a website endpoint is public and plain HTTP"
        (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", logical_id
        assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
    app = resource(template, APP_BUCKET)
    # No ACLs at all on the app's files; only CloudFront's standard logging needs them, on the log bucket.
    assert app["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert app["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": LOG_BUCKET}


def bucket_policy(template: dict[str, Any], bucket: str) -> list[dict[str, Any]]:
    (policy,) = (
        value["Properties"]
        for value in template["Resources"].values()
        if value["Type"] == "AWS::S3::BucketPolicy" and value["Properties"]["Bucket"] == {"Ref": bucket}
    )
    statements: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return statements


def test_only_the_distribution_reads_the_app_bucket_and_only_over_tls(template: dict[str, Any]) -> None:
    statements = bucket_policy(template, APP_BUCKET)
    allows = [s for s in statements if s["Effect"] == "Allow"]
    denies = [s for s in statements if s["Effect"] == "Deny"]

    assert allows == [
        {
            "Sid": "ThisDistributionReadsOnly",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": {"Fn::Sub": "${WebAppBucket.Arn}/*"},
            "Condition": {"StringEquals": {"AWS:SourceArn": {"Fn::Sub": DISTRIBUTION_ARN}}},
        }
    ]
    assert [(d["Principal"], d["Action"], d["Condition"]) for d in denies] == [
        ("*", "s3:*", {"Bool": {"aws:SecureTransport": "false"}})
    ]
    # The log bucket: only S3's log delivery for the app bucket writes, and only over TLS.
    log_allows = [s for s in bucket_policy(template, LOG_BUCKET) if s["Effect"] == "Allow"]
    log_writer = ({"Service": "logging.s3.amazonaws.com"}, "s3:PutObject")
    assert [(s["Principal"], s["Action"]) for s in log_allows] == [log_writer]
    assert log_allows[0]["Condition"]["ArnLike"] == {"aws:SourceArn": {"Fn::GetAtt": [APP_BUCKET, "Arn"]}}


def test_the_distribution_reads_the_bucket_through_origin_access_control(template: dict[str, Any]) -> None:
    config = resource(template, DISTRIBUTION)["DistributionConfig"]
    (origin,) = config["Origins"]
    control = resource(template, "WebAppOriginAccessControl")["OriginAccessControlConfig"]

    assert origin["DomainName"] == {"Fn::GetAtt": [APP_BUCKET, "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["WebAppOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy origin access identity
    assert (control["OriginAccessControlOriginType"], control["SigningBehavior"], control["SigningProtocol"]) == (
        "s3",
        "always",
        "sigv4",
    )


def test_the_distribution_is_https_only_and_serves_index_html_at_its_root(template: dict[str, Any]) -> None:
    config = resource(template, DISTRIBUTION)["DistributionConfig"]
    behaviours = [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]

    assert config["DefaultRootObject"] == "index.html"
    for behaviour in behaviours:
        assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
        assert set(behaviour["AllowedMethods"]) == {"GET", "HEAD"}
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": HEADERS_POLICY}
    assert config["Logging"]["Bucket"] == {"Fn::GetAtt": [LOG_BUCKET, "RegionalDomainName"]}


def test_the_csp_on_aws_is_the_local_one_connecting_also_to_the_api_and_the_issuer(template: dict[str, Any]) -> None:
    assert aws_csp(template, PARAMETERS) == local_csp_connecting_to(
        "https://customers.example.com", "https://cognito-idp.eu-west-1.amazonaws.com"
    )
    # A token endpoint on another host (Cognito's domain) is added from WebAuthOrigins, and nothing else.
    cognito = {**PARAMETERS, "PublicBaseUrl": "https://api.example.com/", "WebAuthOrigins": "https://mci.auth.example"}
    assert aws_csp(template, cognito) == local_csp_connecting_to(
        "https://api.example.com", "https://cognito-idp.eu-west-1.amazonaws.com", "https://mci.auth.example"
    )
    csp = aws_csp(template, PARAMETERS)
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "script-src 'self';" in csp
    assert csp.endswith("frame-ancestors 'none'")
    assert "*" not in csp


def test_the_headers_policy_adds_hsts_to_the_local_headers(template: dict[str, Any]) -> None:
    headers = resource(template, HEADERS_POLICY)["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    local = dict(security_headers(CONTENT_SECURITY_POLICY))

    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["StrictTransportSecurity"]["IncludeSubdomains"] is True
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert local["X-Content-Type-Options"] == "nosniff"
    assert headers["FrameOptions"] == {"Override": True, "FrameOption": local["X-Frame-Options"]}
    assert headers["ReferrerPolicy"] == {"Override": True, "ReferrerPolicy": local["Referrer-Policy"]}
    assert all(header["Override"] is True for header in headers.values())


def test_the_api_admits_only_the_distributions_origin_with_the_headers_the_app_sends(template: dict[str, Any]) -> None:
    cors = resource(template, "HttpApi")["CorsConfiguration"]
    sent = set(re.findall(r"""headers(?:\.(\w+)|\["([\w-]+)"\]) = """, API_JS.read_text(encoding="utf-8")))
    sent_names = {(dotted or quoted).lower() for dotted, quoted in sent}

    assert cors["AllowOrigins"] == [DISTRIBUTION_ORIGIN]
    assert set(cors["AllowMethods"]) == {"GET", "POST"}
    assert sent_names == {"authorization", "content-type", "idempotency-key"}
    assert set(cors["AllowHeaders"]) == sent_names
    # The app waits Retry-After on 429/503: a cross-origin answer shows it only when exposed.
    assert 'headers.get("Retry-After")' in API_JS.read_text(encoding="utf-8")
    assert cors["ExposeHeaders"] == ["retry-after"]
    assert not cors.get("AllowCredentials")  # bearer tokens, never cookies


def test_outputs_name_the_app_url_bucket_and_distribution(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]

    assert outputs["WebAppUrl"]["Value"] == {"Fn::Sub": "https://${WebAppDistribution.DomainName}/"}
    assert outputs["WebAppBucketName"]["Value"] == {"Ref": APP_BUCKET}
    assert outputs["WebAppDistributionId"]["Value"] == {"Ref": DISTRIBUTION}
    for parameter in ("WebClientId", "WebScope", "WebAuthOrigins"):
        assert parameter in template["Parameters"]
