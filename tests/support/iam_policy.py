"""A small evaluator of IAM identity policies, for the template's own policy documents.

It resolves the intrinsic functions those documents use (Ref, Fn::Sub, Fn::Join, Fn::GetAtt)
with given values, and decides a request the way IAM does for one identity: an explicit Deny
wins, otherwise some Allow must match, otherwise it is denied. ``*`` and ``?`` are IAM's
wildcards (``*`` crosses ``/``); actions compare case-insensitively, resources exactly. What it
does not model (NotAction, NotResource, Condition, Principal) raises instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
_SUPPORTED = {"Sid", "Effect", "Action", "Resource"}


def resolve(value: Any, names: Mapping[str, str]) -> Any:
    """The value with every intrinsic function replaced; ``names`` maps a logical id or pseudo
    parameter (``AWS::Region``) to its value, and ``Logical.Attribute`` to an attribute's."""
    if isinstance(value, list):
        return [resolve(item, names) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return _named(names, value["Ref"])
    if set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        return _named(names, f"{logical_id}.{attribute}")
    if set(value) == {"Fn::Join"}:
        separator, items = value["Fn::Join"]
        return separator.join(str(item) for item in resolve(items, names))
    if set(value) == {"Fn::Sub"}:
        template, local = (
            (value["Fn::Sub"], {})
            if isinstance(value["Fn::Sub"], str)
            else (value["Fn::Sub"][0], resolve(value["Fn::Sub"][1], names))
        )
        return _SUB_VARIABLE.sub(
            lambda m: str(local[m.group(1)]) if m.group(1) in local else _named(names, m.group(1)),
            template,
        )
    if any(key.startswith("Fn::") for key in value):
        raise ValueError(f"intrinsic function not resolved here: {sorted(value)}")
    return {key: resolve(item, names) for key, item in value.items()}


def _named(names: Mapping[str, str], name: str) -> str:
    if name not in names:
        raise KeyError(f"no value given for {name}")
    return names[name]


def _pattern(wildcard: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in wildcard)
    return re.compile("".join(parts), re.IGNORECASE if ignore_case else 0)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _matches(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    unsupported = set(statement) - _SUPPORTED
    if unsupported:
        raise ValueError(f"statement elements not evaluated here: {sorted(unsupported)}")
    return any(
        _pattern(a, ignore_case=True).fullmatch(action) for a in _listed(statement["Action"])
    ) and any(
        _pattern(r, ignore_case=False).fullmatch(resource) for r in _listed(statement["Resource"])
    )


def allows(documents: list[Mapping[str, Any]], action: str, resource: str) -> bool:
    """Whether an identity holding exactly these policy documents may do ``action`` on
    ``resource``."""
    statements = [
        statement
        for document in documents
        for statement in _listed_statements(document["Statement"])
        if _matches(statement, action, resource)
    ]
    if any(statement["Effect"] == "Deny" for statement in statements):
        return False
    return any(statement["Effect"] == "Allow" for statement in statements)


def _listed_statements(value: Any) -> list[Mapping[str, Any]]:
    return [value] if isinstance(value, dict) else list(value)
