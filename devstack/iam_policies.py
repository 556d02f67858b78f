"""Each function's IAM policy statements, as template.yaml gives its role once deployed.

samtranslator (SAM's own translator, the one `sam validate` and `sam deploy` run) turns the
template into CloudFormation, expanding the SAM policy templates (DynamoDBCrudPolicy, ...) into
the function role's inline policies; the managed policies the role attaches from the template
(BackupWriterPolicy, ...) are added. The intrinsics (Ref, Fn::GetAtt, Fn::Sub, Fn::Join,
Fn::Split, Fn::If, Fn::Select) are then resolved against the local names and ARNs. AWS managed
policies (AWSLambdaBasicExecutionRole, ...) grant logs, X-Ray and network interfaces, which no
function calls locally: they add nothing here.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from devstack.template import Template

# Where the deployment has artifacts, translation needs only placeholders.
_PLACEHOLDER_CODE = "s3://local-artifacts/code.zip"
_PLACEHOLDER_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/local:latest"
_NO_VALUE = object()

Statements = list[dict[str, Any]]


class _NoManagedPolicies:
    """samtranslator asks for AWS managed policies by name only for names in Policies."""

    def load(self) -> dict[str, str]:
        return {}


def translate(template: Template, region: str) -> dict[str, Any]:
    """The template as CloudFormation, SAM's resources expanded (roles with their policies)."""
    from samtranslator.translator.transform import transform

    body = copy.deepcopy(template.body)
    for resource in (body.get("Resources") or {}).values():
        props = resource.setdefault("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function":
            if props.get("PackageType") == "Image":
                props["ImageUri"] = _PLACEHOLDER_IMAGE
            else:
                props["CodeUri"] = _PLACEHOLDER_CODE
        elif kind == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = _PLACEHOLDER_CODE
        elif kind == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            props.pop("DefinitionUri")
            props["Definition"] = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    saved_region = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    quiet = logging.getLogger("samtranslator")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        result: dict[str, Any] = transform(body, {}, _NoManagedPolicies())
    finally:
        quiet.setLevel(level)
        if saved_region is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved_region
    return result


class Resolver:
    """Evaluates CloudFormation intrinsics with the local stack's values.

    ``refs``: logical ID or parameter -> what Ref gives (a list for list parameters);
    ``attributes``: (logical ID, attribute) -> what Fn::GetAtt gives. A reference to anything
    else resolves to ``unresolved:<name>``, which no call's ARN matches: it grants nothing.
    """

    def __init__(
        self,
        refs: Mapping[str, Any],
        attributes: Mapping[tuple[str, str], str],
        conditions: Mapping[str, Any],
    ) -> None:
        self.refs = refs
        self.attributes = attributes
        self._conditions = conditions
        self._decided: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._decided:
            self._decided[name] = bool(self.resolve(self._conditions[name]))
        return self._decided[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, arg)
        return {key: self.resolve(item) for key, item in value.items()}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        return self.refs.get(name, f"unresolved:{name}")

    def get_att(self, arg: Any) -> str:
        logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
        return self.attributes.get((logical_id, attribute), f"unresolved:{logical_id}.{attribute}")

    def sub(self, arg: Any) -> str:
        text, variables = (arg[0], self.resolve(arg[1])) if isinstance(arg, list) else (arg, {})

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                return str(self.get_att(name))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)


def _join(resolver: Resolver, arg: Any) -> str:
    separator, items = arg
    values = resolver.resolve(items)
    flat: list[str] = []
    for item in values if isinstance(values, list) else [values]:
        flat.extend(str(part) for part in (item if isinstance(item, list) else [item]))
    return str(separator).join(flat)


def _if(resolver: Resolver, arg: Any) -> Any:
    name, when_true, when_false = arg
    return resolver.resolve(when_true if resolver.condition(name) else when_false)


_INTRINSICS: dict[str, Any] = {
    "Ref": lambda r, arg: r.ref(arg),
    "Fn::GetAtt": lambda r, arg: r.get_att(arg),
    "Fn::Sub": lambda r, arg: r.sub(arg),
    "Fn::Join": _join,
    "Fn::Split": lambda r, arg: str(r.resolve(arg[1])).split(arg[0]),
    "Fn::Select": lambda r, arg: r.resolve(arg[1])[int(r.resolve(arg[0]))],
    "Fn::If": _if,
    "Fn::Equals": lambda r, arg: r.resolve(arg[0]) == r.resolve(arg[1]),
    "Fn::Not": lambda r, arg: not r.resolve(arg[0]),
    "Fn::And": lambda r, arg: all(r.resolve(item) for item in arg),
    "Fn::Or": lambda r, arg: any(r.resolve(item) for item in arg),
    "Condition": lambda r, arg: r.condition(arg),
}


def _statements(document: Mapping[str, Any]) -> Statements:
    statement = document.get("Statement") or []
    listed = statement if isinstance(statement, list) else [statement]
    return [dict(item) for item in listed if isinstance(item, Mapping)]


def role_policies(cfn: Mapping[str, Any], resolver: Resolver) -> dict[str, Statements]:
    """Function logical ID -> the resolved statements of its role (inline and attached)."""
    resources: Mapping[str, Any] = cfn.get("Resources") or {}
    policies: dict[str, Statements] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        role = (resource.get("Properties") or {}).get("Role")
        role_id = str(role.get("Fn::GetAtt", [""])[0]) if isinstance(role, dict) else ""
        role_props = (resources.get(role_id) or {}).get("Properties") or {}
        statements: Statements = []
        for policy in role_props.get("Policies") or []:
            statements.extend(_statements(resolver.resolve(policy.get("PolicyDocument") or {})))
        for attached in role_props.get("ManagedPolicyArns") or []:
            if isinstance(attached, dict) and "Ref" in attached:
                managed = resources.get(attached["Ref"]) or {}
                document = (managed.get("Properties") or {}).get("PolicyDocument") or {}
                statements.extend(_statements(resolver.resolve(document)))
        policies[logical_id] = statements
    return policies
