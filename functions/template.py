"""Write the functions of functions/table.py into template.yaml, between its generated markers.

``python -m functions.template`` (``make template``) rewrites only the generated region; everything else in
template.yaml (parameters, globals, layers, API, tables, queues, alarms, outputs) is written by hand. The output
is plain SAM with short-form intrinsics, the same bytes for the same table (tests/unit/test_template.py
checks the committed template against it).
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from functions.table import FUNCTIONS, HTTP_FUNCTION_PROPERTIES, Allow, Function, GetAtt, If, Ref, Route, Sub, Why

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"
COMMAND = "make template"
BEGIN = f"  # ---- generated from functions/table.py by `{COMMAND}`: do not edit\n"
END = "  # ---- end of the generated functions\n"
WIDTH = 116  # comment lines, indentation included

HEADER = (
    "One function per row of functions/table.py (docs/deployment.md#adding-a-route), each named so that its log"
    " group and the role's fence around it need no reference back to the function. Every function gets its log"
    " group and, on the role SAM generates, the OwnLogGroupOnly Deny: SAM adds AWSLambdaBasicExecutionRole (logs"
    ' on "*") to that role, and writing to any log group but the function\'s own is refused. The checkov checks'
    " that hold for every"
    " function (VPC, environment key, DLQ, reserved concurrency) are skipped in .checkov.yaml with their reasons."
    " LoggingConfig: JSON, so Lambda's own lines (an invocation that raised, a timeout, START and REPORT) are JSON like"
    " Powertools' and queries keyed on fields see them (docs/operations.md); INFO and no other level, because"
    " Powertools takes it over POWERTOOLS_LOG_LEVEL and Lambda reads a line without a level (the EMF metrics) as INFO:"
    " WARN would drop the metrics and the lines the metric filters read, DEBUG would make the runtime print"
    " botocore's debug lines (request bodies). LogGroup names the function's own group, so it is created first."
)
PUBLIC_WHY = (
    "Public routes: no JWT; the token in the path is the only credential. The access log records the route key"
    " ({path}), never the path with the token."
)
OPERATIONS_WHY = (
    "API Gateway refuses (403) a token without the operations scope, whatever its roles claim; the handler then"
    " refuses one that also carries a partner role or organisation (rule 30)."
)
# Every function's LoggingConfig (HEADER says why), with its own log group.
LOGGING = {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO"}


# ---------------------------------------------------------------- YAML, the way template.yaml writes it


def _plain_is_safe(text: str) -> bool:
    if not text or text != text.strip() or text[0] in "!&*#|>%@`'\"{[-?:,":
        return False
    try:
        return bool(yaml.safe_load(f"key: {text}") == {"key": text})
    except yaml.YAMLError:
        return False


def scalar(value: Any) -> str:
    """One scalar or intrinsic on one line: plain where YAML reads it back as the same text, else quoted."""
    if isinstance(value, Ref):
        return f"!Ref {value.name}"
    if isinstance(value, GetAtt):
        return f"!GetAtt {value.target}"
    if isinstance(value, Sub):
        return f"!Sub {scalar(value.text)}"
    if isinstance(value, If):
        return f"!If [{value.condition}, {scalar(value.when_true)}, {scalar(value.when_false)}]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _plain_is_safe(text):
        return text
    if '"' in text and "'" not in text:
        return f"'{text}'"
    return json.dumps(text, ensure_ascii=False)


def _comment(text: str, indent: int) -> list[str]:
    if not text:
        return []
    pad = " " * indent
    return [f"{pad}# {line}" for line in textwrap.wrap(text, WIDTH - indent - 2)]


def _unwrap(value: Any) -> tuple[str, Any]:
    return (value.text, value.value) if isinstance(value, Why) else ("", value)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | list | tuple)


def mapping(values: Mapping[str, Any], indent: int) -> list[str]:
    lines: list[str] = []
    pad = " " * indent
    for key, raw in values.items():
        why, value = _unwrap(raw)
        lines += _comment(why, indent)
        if _is_scalar(value):
            lines.append(f"{pad}{key}: {scalar(value)}")
        else:
            lines.append(f"{pad}{key}:")
            lines += mapping(value, indent + 2) if isinstance(value, Mapping) else sequence(value, indent + 2)
    return lines


def sequence(values: Iterable[Any], indent: int) -> list[str]:
    lines: list[str] = []
    pad = " " * indent
    for raw in values:
        why, value = _unwrap(raw)
        lines += _comment(why, indent)
        if _is_scalar(value):
            lines.append(f"{pad}- {scalar(value)}")
            continue
        assert isinstance(value, Mapping), "a list in a list is not written here"
        item = mapping(value, indent + 2)
        assert not item[0].lstrip().startswith("#"), "a comment on an item's first key goes on the item"
        lines += [f"{pad}- {item[0].lstrip()}", *item[1:]]
    return lines


# ---------------------------------------------------------------- one row, as resources


def _statement(allow: Allow) -> Why:
    return Why(
        allow.why,
        {"Sid": allow.sid, "Effect": "Allow", "Action": list(allow.actions), "Resource": allow.resource},
    )


def _policies(function: Function) -> list[Any]:
    fence = {
        "Sid": "OwnLogGroupOnly",
        "Effect": "Deny",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "NotResource": GetAtt(f"{function.log_group}.Arn"),
    }
    return [{"Version": "2012-10-17", "Statement": [fence, *map(_statement, function.allow)]}]


def _route_event(route: Route) -> dict[str, Any]:
    properties: dict[str, Any] = {"ApiId": Ref("HttpApi"), "Method": route.method, "Path": route.path}
    if route.scope is None:
        properties["Auth"] = {"Authorizer": "NONE"}
    else:
        why = OPERATIONS_WHY if route.roles is not None and route.path.startswith("/ops/") else ""
        properties["Auth"] = Why(why, {"AuthorizationScopes": [route.scope]})
    if route.throttle is not None:
        burst, rate = route.throttle
        settings = {"ThrottlingBurstLimit": burst, "ThrottlingRateLimit": rate}
        properties["RouteSettings"] = Why(route.why_throttle, settings)
    return {"Type": "HttpApi", "Properties": properties}


def _events(function: Function) -> Why:
    events: dict[str, Any] = {}
    for route in function.routes:
        events[route.event or function.name] = _route_event(route)
    events.update(function.events)
    public = sorted({route.path for route in function.routes if route.roles is None})
    return Why(PUBLIC_WHY.format(path=", ".join(public)) if public else "", events)


def function_resources(function: Function) -> dict[str, Any]:
    """The function's resource and its log group, as template.yaml holds them."""
    properties: dict[str, Any] = {
        "Description": function.description,
        "FunctionName": Sub(function.function_name),
        "CodeUri": f"functions/{function.folder}/",
        "Handler": "app.lambda_handler",
        **(HTTP_FUNCTION_PROPERTIES if function.routes else {}),
        **function.properties,
    }
    if function.environment:
        properties["Environment"] = {"Variables": dict(function.environment)}
    if "Role" not in function.properties:
        properties["Policies"] = _policies(function)
    if function.routes or function.events:
        properties["Events"] = _events(function)
    properties["LoggingConfig"] = {**LOGGING, "LogGroup": Ref(function.log_group)}
    log_group = {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": Sub(f"/aws/lambda/{function.function_name}"),
            "RetentionInDays": Ref("LogRetentionDays"),
            "KmsKeyId": GetAtt("ObservabilityKey.Arn"),
        },
    }
    resource = {"Type": "AWS::Serverless::Function", "Properties": properties}
    return {function.logical_id: Why(function.why, resource), function.log_group: log_group}


def region(functions: Iterable[Function] = FUNCTIONS) -> str:
    """The generated region, markers included."""
    blocks = ["\n".join(_comment(HEADER, 2))]
    for function in functions:
        blocks += ["\n".join(mapping({key: value}, 2)) for key, value in function_resources(function).items()]
    return BEGIN + "\n\n".join(blocks) + "\n" + END


def render(template_text: str, functions: Iterable[Function] = FUNCTIONS) -> str:
    """``template_text`` with its generated region written from ``functions``."""
    start, end = template_text.find(BEGIN), template_text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"template.yaml needs the generated markers:\n{BEGIN}...\n{END}")
    return template_text[:start] + region(functions) + template_text[end + len(END) :]


def main(path: Path = TEMPLATE_PATH) -> int:
    text = path.read_text(encoding="utf-8")
    rendered = render(text)
    if rendered != text:
        path.write_text(rendered, encoding="utf-8")
        print(f"{path.name}: functions regenerated from functions/table.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
