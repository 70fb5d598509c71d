"""Issue 14 on AWS: `make publish-web` (local/publish_web.py) against moto's S3 and CloudFront.

The bucket gets exactly the files the local stack serves (none of npm's, no hidden file), each with its content
type; index.html and config.json are no-cache, a file whose name carries its hash or version is immutable;
config.json is the OIDC configuration of the deployed stack. docs/web.md#on-aws.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.publish_web import (
    IMMUTABLE,
    NO_CACHE,
    PublishError,
    WebAppTarget,
    app_objects,
    main,
    publish,
    target_from_stack,
)
from local.web_files import CONTENT_TYPES, WEB_ROOT

BUCKET = "mci-customers-dev-webappbucket-1x2y3z"
TARGET = WebAppTarget(
    bucket=BUCKET,
    api_url="https://customers-dev.example.com/",
    issuer="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
    client_id="4bcdefgh1234",
    scope="openid mci/partner",
)
CONFIG = {
    "apiUrl": "https://customers-dev.example.com",
    "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
    "clientId": "4bcdefgh1234",
    "scope": "openid mci/partner",
    "auth": "oidc",
}


@pytest.fixture
def s3(aws_environment: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def stored(s3: Any) -> dict[str, dict[str, Any]]:
    """key -> the object's head (ContentType, CacheControl) and its Body bytes."""
    objects = {}
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        answer = s3.get_object(Bucket=BUCKET, Key=item["Key"])
        objects[item["Key"]] = {**answer, "Body": answer["Body"].read()}
    return objects


def committed_app_files() -> set[str]:
    """The files of web/ in git that the app loads: everything but npm's manifest and lockfile."""
    listed = subprocess.run(
        ["git", "ls-files", "web"], cwd=WEB_ROOT.parent, capture_output=True, text=True, check=True
    ).stdout.split()
    return {name.removeprefix("web/") for name in listed if not name.startswith("web/package")}


def test_the_app_is_uploaded_with_its_content_types_cache_headers_and_config(s3: Any) -> None:
    keys = publish(s3, TARGET)
    objects = stored(s3)

    assert set(objects) == set(keys) == committed_app_files() | {"config.json"}
    assert {"index.html", "css/app.css", "js/main.js", "i18n/es.json", "vendor/oidc-client-ts.js"} <= set(objects)
    assert not [key for key in objects if "node_modules" in key or "package" in key or "/." in f"/{key}"]
    for key, item in objects.items():
        assert item["ContentType"] == CONTENT_TYPES[Path(key).suffix], key
        assert item["CacheControl"] in {NO_CACHE, IMMUTABLE}, key
        if key != "config.json":
            assert item["Body"] == (WEB_ROOT / key).read_bytes(), key
    assert objects["index.html"]["ContentType"] == "text/html; charset=utf-8"
    assert objects["js/main.js"]["ContentType"] == "text/javascript; charset=utf-8"
    assert objects["index.html"]["CacheControl"] == NO_CACHE
    assert objects["config.json"]["CacheControl"] == NO_CACHE
    assert json.loads(objects["config.json"]["Body"]) == CONFIG
    # A page never names a file not uploaded yet: the entry points go last.
    assert keys[-2:] == ["config.json", "index.html"]


def test_only_files_named_by_their_content_are_immutable(s3: Any, tmp_path: Path) -> None:
    files = {
        "index.html": "<!doctype html>",
        "config.json": '{"auth": "local"}',  # a leftover: the deploy's config.json replaces it
        "js/main.js": "export {};",
        "js/chunk.3f2a9c1b.js": "export {};",
        "vendor/lib-1.2.3.js": "export {};",
        "css/app.css": "body {}",
        ".env": "SECRET=1",
        "js/.cache.js": "",
        "package.json": "{}",
        "package-lock.json": "{}",
        "node_modules/lib/index.js": "export {};",
        "notes.txt": "an unknown type",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")

    publish(s3, TARGET, root=tmp_path)
    cache = {key: item["CacheControl"] for key, item in stored(s3).items()}

    assert cache == {
        "index.html": NO_CACHE,
        "config.json": NO_CACHE,
        "js/main.js": NO_CACHE,
        "css/app.css": NO_CACHE,
        "js/chunk.3f2a9c1b.js": IMMUTABLE,
        "vendor/lib-1.2.3.js": IMMUTABLE,
    }
    assert IMMUTABLE == "public, max-age=31536000, immutable"
    assert json.loads(stored(s3)["config.json"]["Body"]) == CONFIG


def test_the_distribution_is_invalidated_after_the_upload(s3: Any) -> None:
    cloudfront = boto3.client("cloudfront", region_name="us-east-1")
    origin = {
        "Id": "app",
        "DomainName": f"{BUCKET}.s3.us-east-1.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "test",
            "Comment": "web app",
            "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": {"TargetOriginId": "app", "ViewerProtocolPolicy": "redirect-to-https"},
        }
    )["Distribution"]

    publish(s3, WebAppTarget(**{**TARGET.__dict__, "distribution_id": distribution["Id"]}), cloudfront=cloudfront)
    invalidations = cloudfront.list_invalidations(DistributionId=distribution["Id"])["InvalidationList"]

    assert invalidations["Quantity"] == 1
    (summary,) = invalidations["Items"]
    batch = cloudfront.get_invalidation(DistributionId=distribution["Id"], Id=summary["Id"])
    assert batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"] == ["/*"]


def test_the_target_comes_from_the_stacks_outputs_and_parameters() -> None:
    stack = {
        "Outputs": [
            {"OutputKey": "WebAppBucketName", "OutputValue": BUCKET},
            {"OutputKey": "WebAppDistributionId", "OutputValue": "E2ABCDEF"},
            {"OutputKey": "ApiUrl", "OutputValue": "https://abc.execute-api.eu-west-1.amazonaws.com"},
        ],
        "Parameters": [
            {"ParameterKey": "PublicBaseUrl", "ParameterValue": "https://customers-dev.example.com/"},
            {"ParameterKey": "JwtIssuer", "ParameterValue": CONFIG["issuer"]},
            {"ParameterKey": "WebClientId", "ParameterValue": "4bcdefgh1234"},
            {"ParameterKey": "WebScope", "ParameterValue": "openid mci/partner"},
        ],
    }

    target = target_from_stack(stack)

    assert target == WebAppTarget(**{**TARGET.__dict__, "distribution_id": "E2ABCDEF"})
    assert target.config() == CONFIG
    with pytest.raises(PublishError, match="WebAppBucketName"):
        target_from_stack({"Outputs": [], "Parameters": stack["Parameters"]})


def test_a_config_that_cannot_sign_in_is_refused_before_any_upload(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PublishError, match="client id"):
        app_objects(WebAppTarget(**{**TARGET.__dict__, "client_id": ""}))
    with pytest.raises(PublishError, match="https"):
        app_objects(WebAppTarget(**{**TARGET.__dict__, "issuer": "http://issuer.example"}))

    arguments = ["--bucket", BUCKET, "--api-url", TARGET.api_url, "--issuer", TARGET.issuer, "--region", "us-east-1"]
    assert main(arguments) == 2
    assert "WebClientId" in capsys.readouterr().err
    assert stored(s3) == {}
    assert main([*arguments, "--client-id", TARGET.client_id]) == 0
    assert json.loads(stored(s3)["config.json"]["Body"]) == CONFIG
