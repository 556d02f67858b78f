"""The functions the local stack runs: local name -> handler file, in one place.

Where template.yaml declares the function, its timeout, memory and asynchronous on-failure
queue come from there, so a handler has locally the time budget and failure path it has deployed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from devstack.names import local_name
from devstack.template import REPO_ROOT, Template, properties
from platform_backup.settings import Settings

DEFAULT_TIMEOUT_SECONDS = 900
DEFAULT_MEMORY_MB = 512
LAMBDA_DEFAULT_RETRIES = 2  # an asynchronous invocation's retries when none are configured
_FUNCTION_DIR = re.compile(r"functions/([A-Za-z0-9_-]+)")
_FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    source: Path
    handler: str = "lambda_handler"
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    memory_mb: int = DEFAULT_MEMORY_MB
    on_failure_queue: str | None = None  # where a failed asynchronous invocation is recorded
    # Of a failed asynchronous invocation: the template's, or Lambda's default for a function
    # it declares; none for a function outside it (a test's own handler).
    retry_attempts: int = 0
    # The variables the template gives the function: name -> its literal value, or None for
    # the local stack's setting of that name. None: not in the template, the stack's whole
    # environment (a test's own handler).
    environment: Mapping[str, str | None] | None = None
    # Variables set over all of the above: a test gives one function a setting or a PATH of its
    # own (start_stack's ``environment``), as a deployment would through the template.
    overrides: Mapping[str, str] | None = None

    @property
    def code_dir(self) -> str:
        return self.source.parent.name


def default_functions(settings: Settings) -> dict[str, FunctionSpec]:
    """Every function of the system under the name the settings give it locally."""
    executor_name = settings.executor_function_arn.rsplit(":", 1)[-1]
    archiver_name = settings.archiver_function_arn.rsplit(":", 1)[-1]
    by_dir = {
        settings.scheduler_function_name: "scheduler",
        executor_name: "executor",
        archiver_name: "archiver",
        "pdb-retention": "retention",
        "pdb-restore": "restore",
        "pdb-api": "api",
        "pdb-monitor": "monitor",
    }
    return {
        name: FunctionSpec(name=name, source=REPO_ROOT / "functions" / code_dir / "app.py")
        for name, code_dir in by_dir.items()
    }


def template_function_dirs(template: Template) -> dict[str, str]:
    """Logical ID -> code directory under functions/, for each function the template declares.

    Zip functions name it in CodeUri, image functions in their Dockerfile metadata.
    """
    dirs: dict[str, str] = {}
    for logical_id, resource in template.resources(*_FUNCTION_TYPES).items():
        props = properties(resource)
        metadata = resource.get("Metadata") or {}
        for candidate in (props.get("CodeUri"), metadata.get("Dockerfile"), props.get("Handler")):
            match = _FUNCTION_DIR.search(str(candidate or ""))
            if match:
                dirs[logical_id] = match.group(1)
                break
    return dirs


def with_template_config(
    functions: dict[str, FunctionSpec], template: Template, settings: Settings
) -> dict[str, FunctionSpec]:
    globals_ = template.function_globals()
    resources = template.resources(*_FUNCTION_TYPES)
    declared: dict[str, dict[str, Any]] = {}
    for logical_id, code_dir in template_function_dirs(template).items():
        props = properties(resources[logical_id])
        declared[code_dir] = {
            "timeout_seconds": _int_setting("Timeout", props, globals_, DEFAULT_TIMEOUT_SECONDS),
            "memory_mb": _int_setting("MemorySize", props, globals_, DEFAULT_MEMORY_MB),
            "on_failure_queue": _on_failure_queue(props, settings),
            "retry_attempts": _retry_attempts(props),
            "environment": _environment(props, globals_),
        }
    return {
        name: replace(spec, **declared[spec.code_dir]) if spec.code_dir in declared else spec
        for name, spec in functions.items()
    }


def _on_failure_queue(props: dict[str, Any], settings: Settings) -> str | None:
    config = props.get("EventInvokeConfig") or {}
    on_failure = (config.get("DestinationConfig") or {}).get("OnFailure") or {}
    destination = on_failure.get("Destination")
    if on_failure.get("Type") != "SQS" or not isinstance(destination, dict):
        return None
    reference = destination.get("Fn::GetAtt") or [destination.get("Ref")]
    return local_name(str(reference[0]), settings)


def _retry_attempts(props: dict[str, Any]) -> int:
    value = (props.get("EventInvokeConfig") or {}).get("MaximumRetryAttempts")
    return (
        int(value)
        if isinstance(value, int | str) and str(value).isdigit()
        else LAMBDA_DEFAULT_RETRIES
    )


def _environment(props: dict[str, Any], globals_: dict[str, Any]) -> dict[str, str | None]:
    """Globals' variables and the function's own; a value the template computes (!Ref, !Sub,
    ...) is the local stack's setting of that name."""
    variables: dict[str, str | None] = {}
    for source in (globals_, props):
        declared = (source.get("Environment") or {}).get("Variables") or {}
        for name, value in declared.items():
            literal = isinstance(value, str | int | float) and not isinstance(value, bool)
            variables[name] = str(value) if literal else None
    return variables


def _int_setting(key: str, props: dict[str, Any], globals_: dict[str, Any], default: int) -> int:
    # A value given through a parameter (!Ref) is not known locally: the default stands.
    for source in (props, globals_):
        value = source.get(key)
        if isinstance(value, int | str) and str(value).isdigit():
            return int(value)
    return default
