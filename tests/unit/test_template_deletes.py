"""Who may delete backup objects, as template.yaml grants it: a recorded backup's versions, the
retention function's role alone (the writers take back only what they could not complete); the
API's role, which any API caller drives, nothing in any bucket (the remote one included). And
the remote bucket's lock settings reach the functions that write copies."""

from __future__ import annotations

import fnmatch
from typing import Any

from devstack.template import load_template
from tests.unit.test_template import _translated

DELETES = ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention")


def _statements_by_role(resources: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every role's statements: its inline policies and the template's managed policies it
    attaches."""
    managed = {
        logical_id: res["Properties"]["PolicyDocument"]["Statement"]
        for logical_id, res in resources.items()
        if res["Type"] == "AWS::IAM::ManagedPolicy"
    }
    found: dict[str, list[dict[str, Any]]] = {}
    for logical_id, res in resources.items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        props = res["Properties"]
        statements = [
            s for p in props.get("Policies", []) for s in p["PolicyDocument"]["Statement"]
        ]
        for arn in props.get("ManagedPolicyArns", []):
            if isinstance(arn, dict) and arn.get("Ref") in managed:
                statements += managed[arn["Ref"]]
        found[logical_id] = statements
    return found


def _grants(statement: dict[str, Any], action: str) -> bool:
    actions = statement["Action"]
    actions = [actions] if isinstance(actions, str) else actions
    return statement.get("Effect") == "Allow" and any(
        fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions
    )


def test_only_the_retention_functions_role_may_delete_backup_objects() -> None:
    # Given every role the deployed template makes, with what it attaches
    roles = _statements_by_role(_translated(load_template())["Resources"])
    assert "ApiFunctionRole" in roles and "RetentionFunctionRole" in roles
    # Then only the retention function's role may delete a recorded backup's object versions
    # (BackupPrunerPolicy); the writers may only take back what they just wrote and could not
    # complete (BackupCleanupPolicy: a partial object, a remote copy that did not verify)
    resources = _translated(load_template())["Resources"]
    by_policy = {
        name: {
            role
            for role, res in resources.items()
            if res["Type"] == "AWS::IAM::Role"
            and {"Ref": name} in res["Properties"].get("ManagedPolicyArns", [])
        }
        for name in ("BackupPrunerPolicy", "BackupCleanupPolicy")
    }
    assert by_policy["BackupPrunerPolicy"] == {"RetentionFunctionRole"}
    assert by_policy["BackupCleanupPolicy"] == {
        "ExecutorFunctionRole",
        "RestoreFunctionRole",
        "ArchiverFunctionRole",
    }
    deleters = {
        role
        for role, statements in roles.items()
        for statement in statements
        if _grants(statement, "s3:DeleteObjectVersion")
    }
    assert deleters == by_policy["BackupPrunerPolicy"] | by_policy["BackupCleanupPolicy"]
    # And the API's role grants no s3 delete of any kind, nor a way around a lock
    api = roles["ApiFunctionRole"]
    assert not [s for s in api for a in DELETES if _grants(s, a)]
    assert not [s for s in api if _grants(s, "s3:DeleteObjectTagging")]
    # And no role may bypass a governance lock
    assert not [s for st in roles.values() for s in st if _grants(s, DELETES[2])]


def test_the_lock_settings_reach_the_functions_that_write_remote_copies() -> None:
    template = load_template()
    params = template.body["Parameters"]
    assert params["RemoteLockMode"]["AllowedValues"] == ["GOVERNANCE", "COMPLIANCE"]
    assert params["RemoteLockMode"]["Default"] == "GOVERNANCE"
    for function in ("ExecutorFunction", "RestoreFunction"):
        variables = template.body["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["REMOTE_LOCK_MODE"] == {"Ref": "RemoteLockMode"}
        assert variables["REMOTE_LOCK_PERMANENT_DAYS"] == {"Ref": "RemoteLockPermanentDays"}
        assert variables["REMOTE_LOCK_COUNT_DAYS"] == {"Ref": "RemoteLockCountDays"}
