"""Publish the partner web app to AWS: ``web/`` and its ``config.json`` into the stack's bucket.

``make publish-web STACK=mci-customers-dev`` (``python -m local.publish_web --stack ...``) reads the stack's
outputs (``WebAppBucketName``, ``WebAppDistributionId``) and parameters (``PublicBaseUrl``, ``JwtIssuer``,
``WebClientId``, ``WebScope``), uploads the app's files (the same ones the local stack serves: no hidden files,
nothing of npm's) with their content types and cache headers, writes ``config.json`` for the OIDC sign-in,
then invalidates the distribution. ``--bucket``, ``--api-url``... name everything instead of a stack.

Cache headers: a file whose name carries its content's hash or version (``app.3f2a9c1b.css``,
``lib-1.2.3.js``) never changes under that name and is ``immutable`` for a year; every other file, and always
``index.html`` and ``config.json``, is ``no-cache`` (CloudFront and the browser revalidate it by its ETag, a
304 when unchanged), because the app has no build step and its module names stay the same across releases.
``index.html`` and ``config.json`` go last, so a page never names a file not uploaded yet. docs/web.md#on-aws.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.web_files import CONTENT_TYPES, WEB_ROOT, web_file

NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
CONFIG_KEY = "config.json"
# Written last: they name every other file (index.html) or how to reach the API (config.json).
ENTRY_KEYS = ("index.html", CONFIG_KEY)
# A name with its content's hash (8+ hex digits) or its package version before the suffix.
VERSIONED_NAME = re.compile(r"[.-](?:[0-9a-f]{8,}|\d+\.\d+\.\d+(?:-[\w.]+)?)\.[a-z0-9]+$")


class PublishError(Exception):
    """What the publish target was given cannot make a working app."""


@dataclass(frozen=True)
class WebAppTarget:
    """Where the app goes and what its config.json says (``"auth": "oidc"``, docs/web.md)."""

    bucket: str
    api_url: str
    issuer: str
    client_id: str
    scope: str = "openid mci/partner"
    distribution_id: str | None = None

    def config(self) -> dict[str, str]:
        """The app's config.json on AWS."""
        for name, url in (("api URL", self.api_url), ("issuer", self.issuer)):
            if not url.startswith("https://"):
                raise PublishError(f"the {name} must be an https:// URL, not {url!r}")
        if not self.client_id:
            raise PublishError("no OIDC client id: deploy with WebClientId=... (or pass --client-id)")
        return {
            "apiUrl": self.api_url.rstrip("/"),
            "issuer": self.issuer,
            "clientId": self.client_id,
            "scope": self.scope,
            "auth": "oidc",
        }


@dataclass(frozen=True)
class WebObject:
    """One object of the bucket: its key, content, content type and Cache-Control."""

    key: str
    body: bytes
    content_type: str
    cache_control: str


def cache_control(key: str) -> str:
    """``immutable`` for a file whose name changes with its content, ``no-cache`` for every other."""
    if key in ENTRY_KEYS or not VERSIONED_NAME.search(key):
        return NO_CACHE
    return IMMUTABLE


def app_objects(target: WebAppTarget, root: Path = WEB_ROOT) -> list[WebObject]:
    """Every object to upload, in upload order: the app's files, then index.html and config.json."""
    config = json.dumps(target.config(), indent=2).encode() + b"\n"
    objects = [WebObject(CONFIG_KEY, config, CONTENT_TYPES[".json"], NO_CACHE)]
    for path in root.rglob("*"):
        key = path.relative_to(root).as_posix()
        if key == CONFIG_KEY or web_file(key, root) is None:
            continue  # config.json is the deploy's; the rest is what the local stack would not serve either
        objects.append(WebObject(key, path.read_bytes(), CONTENT_TYPES[path.suffix], cache_control(key)))
    if not any(item.key == "index.html" for item in objects):
        raise PublishError(f"{root} has no index.html")
    return sorted(objects, key=lambda item: (item.key in ENTRY_KEYS, item.key))


def publish(s3: Any, target: WebAppTarget, root: Path = WEB_ROOT, cloudfront: Any = None) -> list[str]:
    """Upload the app to ``target.bucket``; invalidate ``target.distribution_id`` when given. Returns the keys."""
    objects = app_objects(target, root)
    for item in objects:
        s3.put_object(
            Bucket=target.bucket,
            Key=item.key,
            Body=item.body,
            ContentType=item.content_type,
            CacheControl=item.cache_control,
        )
    if target.distribution_id and cloudfront is not None:
        cloudfront.create_invalidation(
            DistributionId=target.distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": ["/*"]},
                "CallerReference": f"publish-{time.time_ns()}",
            },
        )
    return [item.key for item in objects]


def target_from_stack(stack: Mapping[str, Any]) -> WebAppTarget:
    """The target a deployed stack names (one ``Stacks`` entry of CloudFormation's ``describe_stacks``)."""
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    parameters = {item["ParameterKey"]: item.get("ParameterValue", "") for item in stack.get("Parameters", [])}
    missing = [name for name in ("WebAppBucketName", "WebAppDistributionId") if name not in outputs]
    if missing:
        raise PublishError(f"the stack has no {', '.join(missing)} output: deploy this version of template.yaml")
    return WebAppTarget(
        bucket=outputs["WebAppBucketName"],
        api_url=parameters.get("PublicBaseUrl", ""),
        issuer=parameters.get("JwtIssuer", ""),
        client_id=parameters.get("WebClientId", ""),
        scope=parameters.get("WebScope") or WebAppTarget.scope,
        distribution_id=outputs["WebAppDistributionId"],
    )


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.publish_web", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", help="a deployed stack: everything below from its outputs and parameters")
    parser.add_argument("--bucket")
    parser.add_argument("--api-url")
    parser.add_argument("--issuer")
    parser.add_argument("--client-id")
    parser.add_argument("--scope", default=WebAppTarget.scope)
    parser.add_argument("--distribution-id", help="invalidated after the upload when given")
    parser.add_argument("--region")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import boto3

    arguments = _arguments(argv)
    session = boto3.session.Session(region_name=arguments.region)
    try:
        if arguments.stack:
            stacks = session.client("cloudformation").describe_stacks(StackName=arguments.stack)["Stacks"]
            target = target_from_stack(stacks[0])
        else:
            target = WebAppTarget(
                bucket=arguments.bucket or "",
                api_url=arguments.api_url or "",
                issuer=arguments.issuer or "",
                client_id=arguments.client_id or "",
                scope=arguments.scope,
                distribution_id=arguments.distribution_id,
            )
            if not target.bucket:
                raise PublishError("name a --stack, or a --bucket with --api-url, --issuer and --client-id")
        keys = publish(session.client("s3"), target, cloudfront=session.client("cloudfront"))
    except PublishError as error:
        print(f"publish-web: {error}", file=sys.stderr)
        return 2
    print(f"publish-web: {len(keys)} objects to s3://{target.bucket}/", end="")
    print(f", distribution {target.distribution_id} invalidated" if target.distribution_id else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
