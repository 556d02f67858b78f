"""Creates in the embedded AWS what template.yaml declares, under the names the settings give
(devstack.names)."""

from __future__ import annotations

import io
import json
import logging
import secrets
import zipfile
from dataclasses import dataclass, field
from typing import Any

from devstack.aws import EmbeddedAws
from devstack.config import DatabaseAccess
from devstack.events import create_function_rules
from devstack.functions import FunctionSpec, template_function_dirs
from devstack.invoker import ACCOUNT_ID
from devstack.names import local_name
from devstack.template import REPO_ROOT, Template, properties
from platform_backup.settings import Settings

log = logging.getLogger("devstack.resources")

LOCAL_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/pdb-local"
REMOTE_BUCKET = "pdb-remote"
_LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@dataclass
class CreatedResources:
    tables: dict[str, str] = field(default_factory=dict)
    buckets: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    state_machines: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    schedule_group: str = ""
    db_secret: str = ""

    def summary(self) -> list[str]:
        return [
            f"tables:         {', '.join(self.tables.values())}",
            f"buckets:        {', '.join(self.buckets)}",
            f"functions:      {', '.join(self.functions)}",
            f"state machines: {', '.join(self.state_machines) or '-'}",
            f"rules:          {', '.join(self.rules) or '-'}",
            f"queues:         {', '.join(self.queues) or '-'}",
            f"topics:         {', '.join(self.topics) or '-'}",
            f"schedule group: {self.schedule_group}",
            f"db secret:      {self.db_secret}",
        ]


def create_resources(
    aws: EmbeddedAws,
    template: Template,
    settings: Settings,
    functions: dict[str, FunctionSpec],
    database: DatabaseAccess,
    restore_database: DatabaseAccess | None = None,
) -> CreatedResources:
    """``restore_database``: the restore user's login, in its own secret (the settings'
    RESTORE_DB_SECRET_ARN names it); without it the database secret serves both, as deployed
    without RestoreDatabaseSecretArn."""
    created = CreatedResources()
    _create_tables(aws, template, settings, created)
    _create_buckets(aws, template, settings, created)
    for logical_id in template.resources("AWS::SQS::Queue"):
        name = local_name(logical_id, settings)
        aws.client("sqs").create_queue(QueueName=name)
        created.queues.append(name)
    for logical_id in template.resources("AWS::SNS::Topic"):
        name = local_name(logical_id, settings)
        aws.client("sns").create_topic(Name=name)
        created.topics.append(name)
    aws.client("scheduler").create_schedule_group(Name=settings.schedule_group)
    created.schedule_group = settings.schedule_group
    aws.client("secretsmanager").create_secret(
        Name=settings.db_secret_arn, SecretString=json.dumps(database.secret())
    )
    created.db_secret = settings.db_secret_arn
    if restore_database is not None:
        if not settings.restore_db_secret_arn:
            raise ValueError("a restore user's login needs RESTORE_DB_SECRET_ARN to name it")
        aws.client("secretsmanager").create_secret(
            Name=settings.restore_db_secret_arn,
            SecretString=json.dumps(restore_database.secret()),
        )
    # A fresh key per stack: the tokens of a stopped stack mean nothing to the next one.
    aws.client("secretsmanager").create_secret(
        Name=settings.page_token_key_secret_arn, SecretString=secrets.token_urlsafe(48)
    )
    _create_functions(aws, functions, created)
    _create_state_machines(aws, template, settings, functions, created)
    created.rules = create_function_rules(aws, template, functions)
    return created


def _create_tables(
    aws: EmbeddedAws, template: Template, settings: Settings, created: CreatedResources
) -> None:
    dynamodb = aws.client("dynamodb")
    for logical_id, resource in template.resources("AWS::DynamoDB::Table").items():
        props = properties(resource)
        name = local_name(logical_id, settings)
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"):
            if key in props:
                request[key] = props[key]
        if request["BillingMode"] == "PROVISIONED":
            request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        dynamodb.create_table(**request)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        created.tables[logical_id] = name


def _create_buckets(
    aws: EmbeddedAws, template: Template, settings: Settings, created: CreatedResources
) -> None:
    s3 = aws.client("s3")
    declared = {
        local_name(logical_id, settings): properties(resource)
        for logical_id, resource in template.resources("AWS::S3::Bucket").items()
    }
    # Deployed, the remote bucket is a parameter (it lives elsewhere); locally it is one more,
    # with Object Lock as README "Object Lock and pinned versions" asks of a remote bucket.
    declared.setdefault(
        REMOTE_BUCKET, {"VersioningConfiguration": {"Status": "Enabled"}, "ObjectLockEnabled": True}
    )
    for name, props in declared.items():
        locked = {"ObjectLockEnabledForBucket": True} if props.get("ObjectLockEnabled") else {}
        s3.create_bucket(Bucket=name, **locked)
        versioning = props.get("VersioningConfiguration")
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=versioning)
        created.buckets.append(name)


def _create_functions(
    aws: EmbeddedAws, functions: dict[str, FunctionSpec], created: CreatedResources
) -> None:
    # Moto, like Lambda, refuses a role it does not know.
    aws.client("iam").create_role(
        RoleName=LOCAL_ROLE_ARN.rsplit("/", 1)[-1], AssumeRolePolicyDocument=_LAMBDA_TRUST
    )
    lambda_ = aws.client("lambda")
    for spec in functions.values():
        # The code never runs in moto (the invoker runs the file itself); Lambda wants some.
        lambda_.create_function(
            FunctionName=spec.name,
            Runtime="python3.12",
            Role=LOCAL_ROLE_ARN,
            Handler=f"app.{spec.handler}",
            Code={"ZipFile": _placeholder_zip()},
            Timeout=spec.timeout_seconds,
            MemorySize=spec.memory_mb,
        )
        created.functions.append(spec.name)


def _create_state_machines(
    aws: EmbeddedAws,
    template: Template,
    settings: Settings,
    functions: dict[str, FunctionSpec],
    created: CreatedResources,
) -> None:
    resolver = _Resolver(aws, template, settings, functions)
    sfn = aws.client("stepfunctions")
    for logical_id, resource in template.resources(
        "AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"
    ).items():
        props = properties(resource)
        definition = _definition_text(props)
        if definition is None:
            log.warning("state machine %s: no definition the local stack can read", logical_id)
            continue
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", resolver.resolve(value))
        name = local_name(logical_id, settings)
        sfn.create_state_machine(name=name, definition=definition, roleArn=LOCAL_ROLE_ARN)
        created.state_machines.append(name)


def _definition_text(props: dict[str, Any]) -> str | None:
    uri = props.get("DefinitionUri")
    if isinstance(uri, str):
        return (REPO_ROOT / uri).read_text(encoding="utf-8")
    if isinstance(props.get("DefinitionString"), str):
        return str(props["DefinitionString"])
    if isinstance(props.get("Definition"), dict):
        return json.dumps(props["Definition"])
    return None


class _Resolver:
    """Turns the !Ref / !GetAtt a state machine's substitutions use into local values."""

    def __init__(
        self,
        aws: EmbeddedAws,
        template: Template,
        settings: Settings,
        functions: dict[str, FunctionSpec],
    ) -> None:
        self.aws = aws
        self.template = template
        self.settings = settings
        names_by_dir = {spec.code_dir: name for name, spec in functions.items()}
        self.function_names = {
            logical_id: names_by_dir[code_dir]
            for logical_id, code_dir in template_function_dirs(template).items()
            if code_dir in names_by_dir
        }

    def resolve(self, value: Any) -> str:
        if isinstance(value, dict) and "Ref" in value:
            logical_id = str(value["Ref"])
            # A topic's Ref is its ARN; the other resources' Ref is their name.
            if self._type(logical_id) == "AWS::SNS::Topic":
                return self._attribute(logical_id, "Arn")
            return self._name(logical_id)
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return self._attribute(logical_id, attribute)
        return str(value)

    def _name(self, logical_id: str) -> str:
        return self.function_names.get(logical_id) or local_name(logical_id, self.settings)

    def _type(self, logical_id: str) -> str | None:
        resource = (self.template.body.get("Resources") or {}).get(logical_id) or {}
        return resource.get("Type")

    def _attribute(self, logical_id: str, attribute: str) -> str:
        resource_type = self._type(logical_id)
        name = self._name(logical_id)
        region = self.aws.region
        arns = {
            "AWS::Serverless::Function": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{region}:{ACCOUNT_ID}:{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}",
        }
        if attribute == "Arn" and resource_type in arns:
            return arns[resource_type]
        log.warning("state machine substitution %s.%s is not known locally", logical_id, attribute)
        return name


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()
