"""A small IAM policy evaluator: is this call (action, resource, request context) allowed?

What it evaluates, as IAM does for an identity policy: an explicit Deny wins, else an Allow must
match, else the call is implicitly denied. A statement matches when its Action (or NotAction)
and its Resource (or NotResource) match, with `*` and `?` wildcards, case-insensitive actions
and case-sensitive resources. Conditions: the String*, Bool, ArnLike and ArnEquals operators over
the keys the request context carries; a condition on a key the context lacks (or an operator not
listed) is treated conservatively: an Allow statement with it does not apply, a Deny statement
with it does.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

Statement = Mapping[str, Any]


@dataclass(frozen=True)
class Call:
    """One request to AWS as IAM sees it: ``service:Action`` on a resource ARN."""

    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return [str(value)]


@lru_cache(maxsize=4096)
def _pattern(wildcard: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(wildcard), re.IGNORECASE if ignore_case else 0)


def _like(value: str, wildcard: str, *, ignore_case: bool = False) -> bool:
    # fnmatch's [...] classes are no IAM syntax: escape them.
    escaped = wildcard.replace("[", "[[]")
    return _pattern(escaped, ignore_case).match(value) is not None


def _matches_any(value: str, wildcards: Iterable[str], *, ignore_case: bool) -> bool:
    return any(_like(value, wildcard, ignore_case=ignore_case) for wildcard in wildcards)


def _action_matches(statement: Statement, action: str) -> bool:
    if "NotAction" in statement:
        return not _matches_any(action, _as_list(statement["NotAction"]), ignore_case=True)
    return _matches_any(action, _as_list(statement.get("Action")), ignore_case=True)


def _resource_matches(statement: Statement, resource: str) -> bool:
    if "NotResource" in statement:
        return not _matches_any(resource, _as_list(statement["NotResource"]), ignore_case=False)
    return _matches_any(resource, _as_list(statement.get("Resource")), ignore_case=False)


_STRING_OPERATORS = {
    "StringEquals": lambda value, expected: value == expected,
    "StringNotEquals": lambda value, expected: value != expected,
    "StringEqualsIgnoreCase": lambda value, expected: value.lower() == expected.lower(),
    "StringLike": lambda value, expected: _like(value, expected),
    "StringNotLike": lambda value, expected: not _like(value, expected),
    "ArnEquals": lambda value, expected: value == expected,
    "ArnLike": lambda value, expected: _like(value, expected),
    "Bool": lambda value, expected: value.lower() == expected.lower(),
}
_NEGATED = {"StringNotEquals", "StringNotLike"}


def _condition_holds(
    condition: Mapping[str, Any], context: Mapping[str, tuple[str, ...]]
) -> bool | None:
    """Whether every operator's every key holds; None when this evaluator cannot tell."""
    for operator, keys in condition.items():
        test = _STRING_OPERATORS.get(operator)
        if test is None:
            return None
        for key, expected in (keys or {}).items():
            values = context.get(key.lower())
            if not values:
                return None
            wanted = _as_list(expected)
            if operator in _NEGATED:
                ok = all(all(test(value, item) for item in wanted) for value in values)
            else:
                # A multi-valued request key (several events in one PutEvents) must hold for each.
                ok = all(any(test(value, item) for item in wanted) for value in values)
            if not ok:
                return False
    return True


def _applies(statement: Statement, call: Call, *, conservative: bool) -> bool:
    if not (
        _action_matches(statement, call.action) and _resource_matches(statement, call.resource)
    ):
        return False
    condition = statement.get("Condition")
    if not condition:
        return True
    holds = _condition_holds(condition, call.context)
    # A condition this evaluator cannot decide: an Allow does not apply, a Deny does.
    return conservative if holds is None else holds


def is_allowed(statements: Iterable[Statement], call: Call) -> bool:
    listed = list(statements)
    for statement in listed:
        if statement.get("Effect") == "Deny" and _applies(statement, call, conservative=True):
            return False
    return any(
        statement.get("Effect") == "Allow" and _applies(statement, call, conservative=False)
        for statement in listed
    )
