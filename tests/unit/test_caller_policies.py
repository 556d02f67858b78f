"""The three managed policies template.yaml exports for callers, evaluated against every route of
the API as API Gateway authorizes it: execute-api:Invoke on
arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<METHOD>/<path>.

A caller with the operator policy can back up now and restore into new databases, and can
neither delete a backup nor restore in place; read-only cannot run anything; the administrator
can do all. Every route the API serves must have a decision here: a new route without one fails.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from devstack.template import Template, load_template, properties
from platform_backup.api.app import app
from tests.support.iam_policy import allows, resolve

READ, OPERATE, ADMINISTER = "read", "operate", "administer"
LEVELS = [READ, OPERATE, ADMINISTER]
POLICIES = {
    READ: ("ReadOnlyCallerPolicy", "ReadOnlyPolicyArn"),
    OPERATE: ("OperatorCallerPolicy", "OperatorPolicyArn"),
    ADMINISTER: ("AdministratorCallerPolicy", "AdministratorPolicyArn"),
}

# Who may call each route: reading, operating (run now, restore into new databases), or
# destroying, overwriting or reconfiguring (deletes, in place, storages and the plan).
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/v1/storages"): READ,
    ("GET", "/v1/storages/{storage_id}"): READ,
    ("GET", "/v1/quota"): READ,
    ("GET", "/v1/plans"): READ,
    ("GET", "/v1/plans/{plan_id}"): READ,
    ("GET", "/v1/plans/{plan_id}/next-runs"): READ,
    ("GET", "/v1/plans/{plan_id}/recovery-window"): READ,
    ("GET", "/v1/executions"): READ,
    ("GET", "/v1/executions/{execution_id}"): READ,
    ("GET", "/v1/backups"): READ,
    ("GET", "/v1/backups/{backup_id}"): READ,
    ("GET", "/v1/restores"): READ,
    ("GET", "/v1/restores/{restore_id}"): READ,
    ("POST", "/v1/plans/{plan_id}/executions"): OPERATE,
    ("POST", "/v1/backups/{backup_id}/restores"): OPERATE,
    ("POST", "/v1/plans/{plan_id}/restores"): OPERATE,
    ("POST", "/v1/backups/{backup_id}/in-place-restores"): ADMINISTER,
    ("POST", "/v1/plans/{plan_id}/in-place-restores"): ADMINISTER,
    ("DELETE", "/v1/backups/{backup_id}"): ADMINISTER,
    ("POST", "/v1/storages"): ADMINISTER,
    ("PATCH", "/v1/storages/{storage_id}"): ADMINISTER,
    ("DELETE", "/v1/storages/{storage_id}"): ADMINISTER,
    # Writes backup records from what a storage holds: the catalog is the administrator's.
    ("POST", "/v1/storages/{storage_id}/catalog-rebuilds"): ADMINISTER,
    ("POST", "/v1/plans"): ADMINISTER,
    ("PUT", "/v1/plans/{plan_id}"): ADMINISTER,
    ("DELETE", "/v1/plans/{plan_id}"): ADMINISTER,
    # A paused plan takes no backups: as harmful as changing it.
    ("POST", "/v1/plans/{plan_id}/pause"): ADMINISTER,
    ("POST", "/v1/plans/{plan_id}/resume"): ADMINISTER,
}

REGION, ACCOUNT, API_ID = "eu-west-1", "210987654321", "a1b2c3d4e5"
NAMES = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "Api": API_ID,
}


def served_routes() -> set[tuple[str, str]]:
    """Every (method, path) the API's resolver dispatches, as its OpenAPI path."""
    routes = [*app._static_routes, *app._dynamic_routes]
    return {(route.method, route.openapi_path) for route in routes}


def request_arn(template: Template, method: str, path: str, value: str = "x1") -> str:
    stage = properties(template.body["Resources"]["Api"])["StageName"]
    concrete = re.sub(r"\{[^}]+\}", value, path)
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{stage}/{method}{concrete}"


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


@pytest.fixture(scope="module")
def documents(template: Template) -> dict[str, dict[str, Any]]:
    resources = template.body["Resources"]
    return {
        level: resolve(properties(resources[logical_id])["PolicyDocument"], NAMES)
        for level, (logical_id, _) in POLICIES.items()
    }


def test_every_route_of_the_api_has_a_decision() -> None:
    served = served_routes()
    assert served, "the API serves no route"
    assert served - ROUTES.keys() == set(), "routes without a decision: add them to ROUTES"
    assert ROUTES.keys() - served == set(), "decisions for routes the API does not serve"


def test_each_policy_allows_exactly_the_routes_of_its_level(
    template: Template, documents: dict[str, dict[str, Any]]
) -> None:
    for level, document in documents.items():
        granted = LEVELS.index(level)
        for (method, path), needed in sorted(ROUTES.items()):
            for value in ("x1", "0123456789abcdef0123456789abcdef", "platform-db"):
                arn = request_arn(template, method, path, value)
                expected = LEVELS.index(needed) <= granted
                assert allows([document], "execute-api:Invoke", arn) == expected, (
                    f"{POLICIES[level][0]}: {method} {path} should be "
                    f"{'allowed' if expected else 'denied'}"
                )


def test_the_operator_can_neither_delete_a_backup_nor_restore_in_place(
    template: Template, documents: dict[str, dict[str, Any]]
) -> None:
    operator = [documents[OPERATE]]
    # Given an operator: what it may do
    for method, path in [
        ("POST", "/v1/plans/{plan_id}/executions"),
        ("POST", "/v1/backups/{backup_id}/restores"),
        ("POST", "/v1/plans/{plan_id}/restores"),
    ]:
        assert allows(operator, "execute-api:Invoke", request_arn(template, method, path))
    # Then it cannot destroy or overwrite
    for method, path in [
        ("DELETE", "/v1/backups/{backup_id}"),
        ("POST", "/v1/backups/{backup_id}/in-place-restores"),
        ("POST", "/v1/plans/{plan_id}/in-place-restores"),
        ("DELETE", "/v1/storages/{storage_id}"),
        ("DELETE", "/v1/plans/{plan_id}"),
    ]:
        assert not allows(operator, "execute-api:Invoke", request_arn(template, method, path))


def test_read_only_cannot_run_now_and_the_administrator_can_do_all(
    template: Template, documents: dict[str, dict[str, Any]]
) -> None:
    run_now = request_arn(template, "POST", "/v1/plans/{plan_id}/executions")
    assert not allows([documents[READ]], "execute-api:Invoke", run_now)
    assert allows(
        [documents[READ]], "execute-api:Invoke", request_arn(template, "GET", "/v1/backups")
    )
    for method, path in ROUTES:
        arn = request_arn(template, method, path)
        assert allows([documents[ADMINISTER]], "execute-api:Invoke", arn), f"{method} {path}"


def test_the_policies_grant_only_invoke_on_this_api_and_are_exported(
    template: Template, documents: dict[str, dict[str, Any]]
) -> None:
    another_api = request_arn(template, "GET", "/v1/backups").replace(API_ID, "otherapi00")
    outputs = template.body["Outputs"]
    for level, (logical_id, output) in POLICIES.items():
        document = documents[level]
        # Then nothing but invoking this API is granted
        assert not allows([document], "execute-api:Invoke", another_api)
        assert not allows(
            [document], "execute-api:ManageConnections", request_arn(template, "GET", "/v1/backups")
        )
        assert template.body["Resources"][logical_id]["Type"] == "AWS::IAM::ManagedPolicy"
        # And each is an output, for `aws iam attach-role-policy --policy-arn ...`
        assert outputs[output]["Value"] == {"Ref": logical_id}


def test_the_evaluator_denies_what_no_statement_allows_and_honours_deny() -> None:
    allow = {"Effect": "Allow", "Action": "execute-api:*", "Resource": "arn:x/prod/*/v1/*"}
    deny = {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": "arn:x/prod/DELETE/*"}
    document = {"Statement": [allow, deny]}
    assert allows([document], "Execute-API:Invoke", "arn:x/prod/GET/v1/backups")
    assert not allows([document], "execute-api:Invoke", "arn:x/prod/DELETE/v1/backups/b")
    assert not allows([document], "execute-api:Invoke", "arn:x/prod/GET/v2/backups")
    assert not allows([{"Statement": []}], "execute-api:Invoke", "arn:x/prod/GET/v1/backups")
    with pytest.raises(ValueError):
        allows([{"Statement": [{**allow, "Condition": {}}]}], "execute-api:Invoke", "arn:x")
