"""Read template.yaml so the local stack and the tests use the deployed tables, routes and settings.

Tables are defined once (in the template); nothing here restates a schema.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"

TABLE_TYPE = "AWS::DynamoDB::Table"
FUNCTION_TYPE = "AWS::Serverless::Function"

# CloudFormation table properties that create_table takes as they are. Everything else (PITR,
# deletion protection, TTL, SSE, tags...) is a separate API call or does not matter locally.
_CREATE_TABLE_PROPERTIES = ("KeySchema", "AttributeDefinitions", "LocalSecondaryIndexes")
_INDEX_PROPERTIES = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")
# A dynamic reference to a secret resolves, locally, to a fixed value that is no secret.
_SECRET_REFERENCE = re.compile(r"\{\{resolve:secretsmanager:([^:}]+)[^}]*\}\}")


# ---------------------------------------------------------------- loading


def _intrinsic(tag_suffix: str, value: Any) -> dict[str, Any]:
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


def _construct_intrinsic(loader: Any, tag_suffix: str, node: Any) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return _intrinsic(tag_suffix, value)


def _construct_timestamp_as_text(loader: Any, node: Any) -> str:
    # CloudFormation reads "2010-09-09" as text; YAML would make it a date.
    return str(loader.construct_scalar(node))


def _loader_class() -> Any:
    # libyaml's C loader when present: parsing the template is most of a test's table setup otherwise.
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader_class: Any = type("CloudFormationLoader", (base,), {})
    loader_class.add_multi_constructor("!", _construct_intrinsic)
    loader_class.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_as_text)
    return loader_class


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template; short tags (!Ref, !Sub...) become their long form."""
    stat = path.stat()
    return copy.deepcopy(_parsed(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=4)
def _parsed(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    """Parsed once per version of the file (the arguments after ``path`` only key the cache)."""
    with path.open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=_loader_class())  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return document


def _resources(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    resources: Mapping[str, Any] = template.get("Resources") or {}
    return {
        logical_id: resource
        for logical_id, resource in resources.items()
        if isinstance(resource, dict) and resource.get("Type") == resource_type
    }


def _properties(resource: Mapping[str, Any]) -> dict[str, Any]:
    properties = resource.get("Properties") or {}
    return dict(properties)


# ---------------------------------------------------------------- tables


def table_definitions(
    template: Mapping[str, Any] | None = None, names: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Logical id -> keyword arguments of DynamoDB ``create_table`` for every table of the template."""
    template = load_template() if template is None else template
    names = names or {}
    definitions: dict[str, dict[str, Any]] = {}
    for logical_id, resource in _resources(template, TABLE_TYPE).items():
        properties = _properties(resource)
        definition: dict[str, Any] = {"TableName": names.get(logical_id, logical_id)}
        definition.update({key: properties[key] for key in _CREATE_TABLE_PROPERTIES if key in properties})
        if "GlobalSecondaryIndexes" in properties:
            definition["GlobalSecondaryIndexes"] = [
                {key: index[key] for key in _INDEX_PROPERTIES if key in index}
                for index in properties["GlobalSecondaryIndexes"]
            ]
        billing_mode = properties.get("BillingMode", "PAY_PER_REQUEST")
        definition["BillingMode"] = billing_mode
        if billing_mode == "PROVISIONED" and "ProvisionedThroughput" in properties:
            definition["ProvisionedThroughput"] = properties["ProvisionedThroughput"]
        stream = properties.get("StreamSpecification")
        if stream:
            definition["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": stream["StreamViewType"],
            }
        definitions[logical_id] = definition
    return definitions


def time_to_live_attributes(template: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Logical id -> TTL attribute name, for the tables whose TTL the template enables."""
    template = load_template() if template is None else template
    attributes: dict[str, str] = {}
    for logical_id, resource in _resources(template, TABLE_TYPE).items():
        ttl = _properties(resource).get("TimeToLiveSpecification") or {}
        if ttl.get("Enabled") and ttl.get("AttributeName"):
            attributes[logical_id] = str(ttl["AttributeName"])
    return attributes


def create_tables(
    client: DynamoDBClient,
    template: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Create every table of the template (an existing one is kept), enable TTL, wait until ACTIVE.

    Returns logical id -> table name.
    """
    template = load_template() if template is None else template
    created: dict[str, str] = {}
    for logical_id, definition in table_definitions(template, names).items():
        table_name = definition["TableName"]
        with contextlib.suppress(client.exceptions.ResourceInUseException):
            client.create_table(**definition)
        created[logical_id] = table_name
    waiter = client.get_waiter("table_exists")
    for table_name in created.values():
        waiter.wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    for logical_id, attribute in time_to_live_attributes(template).items():
        try:
            client.update_time_to_live(
                TableName=created[logical_id],
                TimeToLiveSpecification={"AttributeName": attribute, "Enabled": True},
            )
        except ClientError:
            # Some local backends lack TTL, or report it as already enabled; expiry is not needed there.
            continue
    return created


# ---------------------------------------------------------------- functions and routes


@dataclass(frozen=True)
class Route:
    """One HTTP API route of the template and the function that serves it."""

    method: str
    path: str
    function: str
    code_uri: str
    handler: str
    authorized: bool
    scopes: tuple[str, ...] = ()  # AuthorizationScopes: the token needs one of them (API Gateway's 403 otherwise)


def _function_globals(template: Mapping[str, Any]) -> dict[str, Any]:
    globals_section = template.get("Globals") or {}
    return dict(globals_section.get("Function") or {})


def _api_has_default_authorizer(template: Mapping[str, Any], api_id: Any) -> bool:
    resources: Mapping[str, Any] = template.get("Resources") or {}
    if isinstance(api_id, dict) and "Ref" in api_id:
        api = resources.get(api_id["Ref"]) or {}
        auth = _properties(api).get("Auth") or {}
    else:
        # The implicit API takes its settings from Globals.HttpApi.
        auth = (template.get("Globals") or {}).get("HttpApi", {}).get("Auth") or {}
    return bool(auth.get("DefaultAuthorizer"))


def routes(template: Mapping[str, Any] | None = None) -> list[Route]:
    """Every HttpApi event of every function, in template order."""
    template = load_template() if template is None else template
    function_globals = _function_globals(template)
    found: list[Route] = []
    for logical_id, resource in _resources(template, FUNCTION_TYPE).items():
        properties = _properties(resource)
        events: Mapping[str, Any] = properties.get("Events") or {}
        for event in events.values():
            if event.get("Type") != "HttpApi":
                continue
            event_properties = event.get("Properties") or {}
            auth = event_properties.get("Auth") or {}
            authorizer = auth.get("Authorizer")
            if authorizer is None:
                authorized = _api_has_default_authorizer(template, event_properties.get("ApiId"))
            else:
                authorized = authorizer != "NONE"
            found.append(
                Route(
                    method=str(event_properties.get("Method", "ANY")).upper(),
                    path=str(event_properties.get("Path", "$default")),
                    function=logical_id,
                    code_uri=str(properties.get("CodeUri", function_globals.get("CodeUri", ""))),
                    handler=str(properties.get("Handler", function_globals.get("Handler", ""))),
                    authorized=authorized,
                    scopes=tuple(str(scope) for scope in auth.get("AuthorizationScopes") or ()) if authorized else (),
                )
            )
    return found


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _resolve(template: Mapping[str, Any], value: Any, names: Mapping[str, str]) -> str:
    """Resolve an environment value as the local stack sees it.

    A Ref to a resource becomes its local name (the logical id unless ``names`` maps it), a Ref to
    a parameter its Default, a ``{{resolve:secretsmanager:...}}`` reference ``local_secret(name)``;
    anything unknown becomes "".
    """
    if not isinstance(value, dict):
        return _as_text(value)
    if "Ref" in value:
        name = str(value["Ref"])
        resources: Mapping[str, Any] = template.get("Resources") or {}
        if name in resources:
            return names.get(name, name)
        parameter = (template.get("Parameters") or {}).get(name) or {}
        default = parameter.get("Default")
        return "" if default is None else _as_text(default)
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        text = _SUB_VARIABLE.sub(
            lambda match: "" if "." in match.group(1) else _resolve(template, {"Ref": match.group(1)}, names),
            value["Fn::Sub"],
        )
        return _SECRET_REFERENCE.sub(lambda match: local_secret(match.group(1)), text)
    return ""


def local_secret(name: str) -> str:
    """The value the local stack and the tests use for the secret ``name``: fixed, and not a secret."""
    return f"local-{name}-not-a-secret"


def function_environment(
    template: Mapping[str, Any], logical_id: str, names: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Globals plus function environment variables, resolved for running the handler locally."""
    names = names or {}
    function = _resources(template, FUNCTION_TYPE).get(logical_id)
    if function is None:
        raise KeyError(f"no {FUNCTION_TYPE} named {logical_id} in the template")
    variables: dict[str, Any] = {}
    for source in (_function_globals(template), _properties(function)):
        environment = source.get("Environment") or {}
        variables.update(environment.get("Variables") or {})
    return {name: _resolve(template, value, names) for name, value in variables.items()}
