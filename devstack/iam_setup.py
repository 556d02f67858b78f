"""Builds the functions' roles in the embedded AWS from template.yaml (devstack.iam_local).

The template's references resolve to the local stack's names (devstack.names) and ARNs: tables,
buckets, functions, the state machine, secrets (their ARNs as the embedded Secrets Manager made
them), queues, the schedule group. Parameters: DatabaseSecretArn is the local database secret,
RestoreDatabaseSecretArn the restore user's (when the stack has one), RestoreTargetSecretArns
every secret named TARGET_SECRET_PREFIX* (another server a restore may target), RemoteBucketArn
the local remote bucket, AllowedBucketArns the ALLOWED_BUCKET_ARNS setting
(locally `*`: any bucket a test makes, so S3 statements are checked for their actions there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devstack.aws import EmbeddedAws
from devstack.functions import FunctionSpec, default_functions, template_function_dirs
from devstack.iam_local import ACCOUNT_ID, LocalIam
from devstack.iam_policies import Resolver, role_policies, translate
from devstack.names import local_name
from devstack.resources import REMOTE_BUCKET
from devstack.template import Template
from platform_backup.settings import Settings

STACK_NAME = "pdb"
# Locally, a secret named so is another database server a restore may target.
TARGET_SECRET_PREFIX = "pdb-target-"


def _secret_arns(aws: EmbeddedAws) -> dict[str, str]:
    """Secret name -> ARN, as the embedded Secrets Manager made them (a random suffix)."""
    listed = aws.client("secretsmanager").list_secrets().get("SecretList", [])
    return {secret["Name"]: secret["ARN"] for secret in listed}


def local_resolver(
    template: Template,
    cfn: Mapping[str, Any],
    settings: Settings,
    region: str,
    secret_arns: Mapping[str, str],
) -> Resolver:
    """``secret_arns``: name -> ARN of the secrets the stack made."""

    def arn(service: str, resource: str) -> str:
        return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"

    def secret_arn(name: str) -> str:
        return secret_arns.get(name) or arn("secretsmanager", f"secret:{name}")

    refs: dict[str, Any] = {
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": STACK_NAME,
    }
    attributes: dict[tuple[str, str], str] = {}
    for name, parameter in (template.body.get("Parameters") or {}).items():
        default = parameter.get("Default", "")
        is_list = "List" in str(parameter.get("Type"))
        refs[name] = [item for item in str(default).split(",") if item] if is_list else default
    allowed = [bucket for bucket in settings.allowed_bucket_arns if bucket]
    refs["AllowedBucketArns"] = [
        "arn:aws:s3:::*" if bucket == "*" else bucket for bucket in allowed
    ]
    refs["RemoteBucketArn"] = f"arn:aws:s3:::{REMOTE_BUCKET}"
    refs["DatabaseSecretArn"] = secret_arn(settings.db_secret_arn)
    refs["RestoreTargetSecretArns"] = [arn("secretsmanager", f"secret:{TARGET_SECRET_PREFIX}*")]
    if settings.restore_db_secret_arn:
        refs["RestoreDatabaseSecretArn"] = secret_arn(settings.restore_db_secret_arn)
    # A template function's local name is the one the local stack gives its code.
    by_dir = {spec.code_dir: name for name, spec in default_functions(settings).items()}
    function_dirs = template_function_dirs(template)

    for logical_id, resource in (template.body.get("Resources") or {}).items():
        kind = resource.get("Type")
        name = local_name(logical_id, settings)
        if kind == "AWS::DynamoDB::Table":
            refs[logical_id] = name
            attributes[(logical_id, "Arn")] = arn("dynamodb", f"table/{name}")
        elif kind == "AWS::S3::Bucket":
            refs[logical_id] = name
            attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
        elif kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            function = by_dir.get(function_dirs.get(logical_id, ""), name)
            refs[logical_id] = function
            attributes[(logical_id, "Arn")] = arn("lambda", f"function:{function}")
        elif kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            refs[logical_id] = arn("states", f"stateMachine:{name}")
            attributes[(logical_id, "Name")] = name
            attributes[(logical_id, "Arn")] = refs[logical_id]
        elif kind == "AWS::SecretsManager::Secret":
            refs[logical_id] = secret_arn(name)
        elif kind == "AWS::SQS::Queue":
            refs[logical_id] = f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{name}"
            attributes[(logical_id, "Arn")] = arn("sqs", name)
            attributes[(logical_id, "QueueName")] = name
        elif kind == "AWS::IAM::Role":
            attributes[(logical_id, "Arn")] = (
                f"arn:aws:iam::{ACCOUNT_ID}:role/{name.split('/')[-1]}"
            )
        elif kind in ("AWS::Scheduler::ScheduleGroup", "AWS::SNS::Topic"):
            refs[logical_id] = name
        elif kind == "AWS::KMS::Key":
            attributes[(logical_id, "Arn")] = arn("kms", f"key/{name}")
    return Resolver(refs, attributes, cfn.get("Conditions") or {})


def build_local_iam(
    aws: EmbeddedAws,
    template: Template,
    settings: Settings,
    functions: Mapping[str, FunctionSpec],
) -> LocalIam:
    """A role per template function, in the embedded IAM, with its resolved policies."""
    cfn = translate(template, aws.region)
    resolver = local_resolver(template, cfn, settings, aws.region, _secret_arns(aws))
    local_iam = LocalIam(aws.region)
    function_dirs = template_function_dirs(template)
    for logical_id, statements in role_policies(cfn, resolver).items():
        role_name = f"{STACK_NAME}-{logical_id}Role"
        local_iam.add_role(aws, role_name, statements)
        # As the template's settings do, the role goes to every function of its code.
        for spec in functions.values():
            if spec.code_dir == function_dirs.get(logical_id):
                local_iam.assume(aws, spec.name, role_name)
    return local_iam
