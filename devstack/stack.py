"""The whole local stack in this process: embedded AWS, resources, invoker, API, schedule loop."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from devstack.aws import DEFAULT_REGION, EmbeddedAws
from devstack.config import DatabaseAccess
from devstack.events import LambdaTargets
from devstack.functions import FunctionSpec, default_functions, with_template_config
from devstack.gateway import ApiGateway, binary_media_types
from devstack.iam_local import LocalIam
from devstack.iam_local import install as install_iam
from devstack.iam_local import uninstall as uninstall_iam
from devstack.iam_setup import build_local_iam
from devstack.invoker import Invoker
from devstack.resources import CreatedResources, create_resources
from devstack.schedules import Clock, ScheduleLoop, utc_now
from devstack.template import TEMPLATE_PATH, load_template
from platform_backup.adapters import aws as aws_clients
from platform_backup.composition import common as composition
from platform_backup.settings import Settings, load

log = logging.getLogger("devstack")

API_FUNCTION = "pdb-api"
# A Lambda invocation may run up to 15 minutes; the caller must not give up (or retry) earlier.
_INVOKE_READ_TIMEOUT = 960


@dataclass
class Stack:
    aws: EmbeddedAws
    invoker: Invoker
    gateway: ApiGateway
    schedules: ScheduleLoop
    settings: Settings
    resources: CreatedResources
    lambda_targets: LambdaTargets
    iam: LocalIam

    @property
    def api_url(self) -> str:
        return self.gateway.url

    @property
    def aws_endpoint(self) -> str:
        return self.aws.endpoint

    def stop(self) -> None:
        self.schedules.stop()
        self.gateway.stop()
        self.lambda_targets.uninstall()
        self.invoker.uninstall()
        self.invoker.stop_workers()
        uninstall_iam()
        for call in self.iam.ungranted():
            log.error("ungranted call during this run: %s", call)
        self.aws.stop()
        # The functions ran in this process: what they built (clients, tables bound to this
        # stack's endpoint) goes with it, so a stack started next builds afresh.
        composition.reset()
        aws_clients.client.cache_clear()
        log.info("local stack stopped")


def start_stack(
    api_port: int,
    aws_port: int,
    *,
    region: str = DEFAULT_REGION,
    database: DatabaseAccess | None = None,
    functions: Mapping[str, FunctionSpec] | None = None,
    clock: Clock = utc_now,
    template_path: Path = TEMPLATE_PATH,
    timeouts: Mapping[str, int] | None = None,
    environment: Mapping[str, Mapping[str, str]] | None = None,
    run_workflows: bool = True,
    restore_database: DatabaseAccess | None = None,
) -> Stack:
    """Start everything; port 0 picks a free port (read it back from the Stack).

    ``functions`` replaces the registry of handler files (tests point it at their own);
    ``timeouts`` (function name -> seconds) lowers a template's Timeout, so a test reaches it;
    ``environment`` (function name -> variables) sets variables in that function's workers;
    ``run_workflows=False`` starts workflows without running them (a test runs their steps);
    ``restore_database``: the restore user's login, in the secret RESTORE_DB_SECRET_ARN names.
    """
    aws = EmbeddedAws(port=aws_port, region=region, run_workflows=run_workflows)
    aws.start()
    try:
        # Read after the embedded AWS set the environment, as the handlers will read it.
        settings = load(Settings)
        template = load_template(template_path)
        registry = with_template_config(
            dict(functions) if functions is not None else default_functions(settings),
            template,
            settings,
        )
        for name, seconds in (timeouts or {}).items():
            registry[name] = replace(registry[name], timeout_seconds=seconds)
        for name, variables in (environment or {}).items():
            registry[name] = replace(registry[name], overrides=dict(variables))
        invoker = Invoker(registry, region=region, sqs=aws.client("sqs"), workers=True)
        resources = create_resources(
            aws, template, settings, registry, database or DatabaseAccess(), restore_database
        )
        # Each function calls the embedded AWS as its own role, with the template's policies.
        iam = build_local_iam(aws, template, settings, registry)
        invoker.credentials = iam.credentials
        invoke_client = aws.client("lambda", read_timeout=_INVOKE_READ_TIMEOUT, attempts=1)
        gateway = ApiGateway(api_port, invoke_client, API_FUNCTION, binary_media_types(template))
        schedules = ScheduleLoop(
            scheduler=aws.client("scheduler"),
            events=aws.client("events"),
            lambda_client=invoke_client,
            sfn=aws.client("stepfunctions"),
            sqs=aws.client("sqs"),
            clock=clock,
        )
    except BaseException:
        aws.stop()
        raise
    install_iam(iam)
    invoker.install()
    lambda_targets = LambdaTargets(invoker)
    lambda_targets.install()
    gateway.start()
    schedules.start()
    return Stack(aws, invoker, gateway, schedules, settings, resources, lambda_targets, iam)
