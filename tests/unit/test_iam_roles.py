"""The functions' roles as template.yaml gives them (SAM's policy templates expanded by
samtranslator, references resolved to the local names), and the evaluator that decides a call
against them: what a deployed role would allow or refuse."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.iam_eval import Call, is_allowed
from devstack.iam_policies import Statements, role_policies, translate
from devstack.iam_setup import local_resolver
from devstack.local_settings import LOCAL_SETTINGS
from devstack.template import load_template
from platform_backup.settings import Settings, load

REGION = "us-east-1"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/"
DB_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pdb-platform-db-AbCdEf"


@pytest.fixture(scope="module")
def roles() -> dict[str, Statements]:
    # Scoped as a deployment with one further bucket is (locally any bucket is allowed: `*`).
    env = {**LOCAL_SETTINGS, "AWS_REGION": REGION, "ALLOWED_BUCKET_ARNS": "arn:aws:s3:::extra"}
    settings = load(Settings, env=env)
    template = load_template()
    cfn = translate(template, REGION)
    resolver = local_resolver(template, cfn, settings, REGION, {settings.db_secret_arn: DB_SECRET})
    return role_policies(cfn, resolver)


def allowed(
    roles: dict[str, Statements], role: str, action: str, resource: str, **ctx: Any
) -> bool:
    context = {key.replace("_", ":"): (str(value),) for key, value in ctx.items()}
    return is_allowed(roles[role], Call(action, resource, context))


def test_sam_policy_templates_grant_their_table_and_nothing_else(
    roles: dict[str, Statements],
) -> None:
    # DynamoDBReadPolicy on the plans table: reads, on that table and its indexes
    assert allowed(roles, "RetentionFunction", "dynamodb:GetItem", TABLE + "pdb-plans")
    assert allowed(roles, "RetentionFunction", "dynamodb:Query", TABLE + "pdb-plans/index/x")
    # not writes, not another table's reads
    assert not allowed(roles, "RetentionFunction", "dynamodb:PutItem", TABLE + "pdb-plans")
    # (the monitor reads the plans' leases to tell a dead run from a live one, and writes none)
    assert allowed(roles, "MonitorFunction", "dynamodb:GetItem", TABLE + "pdb-locks")
    assert not allowed(roles, "MonitorFunction", "dynamodb:PutItem", TABLE + "pdb-locks")
    assert not allowed(roles, "MonitorFunction", "dynamodb:GetItem", TABLE + "pdb-restores")


def test_the_database_secret_is_for_the_functions_that_reach_the_database(
    roles: dict[str, Statements],
) -> None:
    for role in ("ExecutorFunction", "RestoreFunction", "ArchiverFunction"):
        assert allowed(roles, role, "secretsmanager:GetSecretValue", DB_SECRET)
    for role in ("ApiFunction", "RetentionFunction", "SchedulerFunction", "MonitorFunction"):
        assert not allowed(roles, role, "secretsmanager:GetSecretValue", DB_SECRET)


def test_writers_may_take_back_what_they_wrote_in_the_stacks_buckets_only(
    roles: dict[str, Statements],
) -> None:
    # The clean-up calls of the executor, the restore (its safety backup) and the archiver:
    # a failed manifest's object, an unverified remote copy with every version of it
    for role in ("ExecutorFunction", "RestoreFunction", "ArchiverFunction"):
        assert allowed(roles, role, "s3:DeleteObject", "arn:aws:s3:::pdb-primary/p/x.sql.zst")
        assert allowed(roles, role, "s3:DeleteObjectVersion", "arn:aws:s3:::pdb-remote/p/x")
        assert allowed(roles, role, "s3:ListBucketVersions", "arn:aws:s3:::pdb-fallback")
        assert allowed(roles, role, "s3:DeleteObjectVersion", "arn:aws:s3:::extra/p/x")
        assert not allowed(roles, role, "s3:DeleteObject", "arn:aws:s3:::someone-else/x")
        assert not allowed(roles, role, "s3:ListBucketVersions", "arn:aws:s3:::someone-else")
        assert not allowed(roles, role, "s3:DeleteBucket", "arn:aws:s3:::pdb-primary")


def test_a_read_pinned_to_a_version_is_granted_to_the_readers(roles: dict[str, Statements]) -> None:
    # The restore reads the version it validated; a writer reads back the copy it wrote
    for role in ("RestoreFunction", "ExecutorFunction", "ArchiverFunction"):
        assert allowed(roles, role, "s3:GetObjectVersion", "arn:aws:s3:::pdb-primary/p/x")
    assert not allowed(roles, "ApiFunction", "s3:GetObjectVersion", "arn:aws:s3:::pdb-primary/p/x")


def test_conditions_are_evaluated_and_an_unknown_one_grants_nothing(
    roles: dict[str, Statements],
) -> None:
    bus = "arn:aws:events:us-east-1:123456789012:event-bus/default"
    assert allowed(
        roles, "ExecutorFunction", "events:PutEvents", bus, events_source="platform-backup"
    )
    assert not allowed(roles, "ExecutorFunction", "events:PutEvents", bus, events_source="other")
    # No source known: the condition cannot hold
    assert not allowed(roles, "ExecutorFunction", "events:PutEvents", bus)


def test_the_evaluator_follows_iam_rules() -> None:
    statements: Statements = [
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/secret/*"},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:sqs:*:*:q?"},
        {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]
    # wildcards in actions (case-insensitive) and resources (case-sensitive)
    assert is_allowed(statements[:2], Call("S3:getobject", "arn:aws:s3:::b/k"))
    assert not is_allowed(statements[:2], Call("s3:GetObject", "arn:aws:s3:::B/k"))
    # an explicit Deny wins over an Allow
    assert not is_allowed(statements[:2], Call("s3:GetObject", "arn:aws:s3:::b/secret/k"))
    # NotAction, and ? for one character
    assert is_allowed(statements[2:3], Call("sqs:SendMessage", "arn:aws:sqs:r:1:q1"))
    assert not is_allowed(statements[2:3], Call("iam:PassRole", "arn:aws:sqs:r:1:q1"))
    assert not is_allowed(statements[2:3], Call("sqs:SendMessage", "arn:aws:sqs:r:1:q10"))
    # a Deny whose condition cannot be decided applies (conservative); a decided one does not
    assert not is_allowed(statements[:1] + statements[3:], Call("s3:GetObject", "arn:aws:s3:::b/k"))
    secure = {"aws:securetransport": ("true",)}
    assert is_allowed(
        statements[:1] + statements[3:], Call("s3:GetObject", "arn:aws:s3:::b/k", secure)
    )
