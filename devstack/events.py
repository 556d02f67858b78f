"""The functions' EventBridge triggers, as template.yaml declares them.

SAM's `EventBridgeRule` events become rules whose matching events reach the function, and its
`Schedule` events become scheduled rules that the schedule loop fires. Moto keeps the rules but
cannot deliver to a Lambda target (put_events fails on one), so delivery to Lambda targets is
routed to the invoker, asynchronously as EventBridge does.
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from typing import Any

from moto.events.models import Rule

from devstack.aws import EmbeddedAws
from devstack.functions import FunctionSpec, template_function_dirs
from devstack.invoker import ACCOUNT_ID, Invoker
from devstack.template import Template, properties

log = logging.getLogger("devstack.events")

_PATTERN_EVENTS = ("EventBridgeRule", "CloudWatchEvent")
_SCHEDULE_EVENTS = ("Schedule",)


def create_function_rules(
    aws: EmbeddedAws, template: Template, functions: dict[str, FunctionSpec]
) -> list[str]:
    """Creates the rules of the functions' template events; returns their names."""
    names_by_dir = {spec.code_dir: name for name, spec in functions.items()}
    resources = template.resources("AWS::Serverless::Function")
    events = aws.client("events")
    created = []
    for logical_id, code_dir in template_function_dirs(template).items():
        function_name = names_by_dir.get(code_dir)
        declared = properties(resources.get(logical_id, {})).get("Events") or {}
        if function_name is None:
            continue
        for event_id, event in declared.items():
            rule = _rule_request(event, f"{function_name}-{event_id}")
            if rule is None:
                if event.get("Type") != "Api":  # the gateway serves the API events
                    log.info("%s event %s is not wired locally", logical_id, event_id)
                continue
            events.put_rule(**rule)
            arn = f"arn:aws:lambda:{aws.region}:{ACCOUNT_ID}:function:{function_name}"
            events.put_targets(
                Rule=rule["Name"],
                EventBusName=rule["EventBusName"],
                Targets=[{"Id": function_name, "Arn": arn}],
            )
            created.append(rule["Name"])
    return created


def _rule_request(event: dict[str, Any], name: str) -> dict[str, Any] | None:
    props = event.get("Properties") or {}
    rule: dict[str, Any] = {"Name": name, "EventBusName": props.get("EventBusName", "default")}
    if props.get("Enabled") is False or props.get("State") == "DISABLED":
        rule["State"] = "DISABLED"
    if event.get("Type") in _PATTERN_EVENTS and props.get("Pattern"):
        rule["EventPattern"] = json.dumps(props["Pattern"])
        return rule
    if event.get("Type") in _SCHEDULE_EVENTS and isinstance(props.get("Schedule"), str):
        rule["ScheduleExpression"] = props["Schedule"]
        return rule
    return None


def _as_sent(event: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge hands it to a target (moto keeps its own fields beside it)."""
    sent = {key: value for key, value in event.items() if key != "ingestion-time"}
    if isinstance(sent.get("time"), int | float):
        moment = datetime.fromtimestamp(sent["time"], UTC)
        sent["time"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return sent


class LambdaTargets:
    """Delivers the events a rule matches to its Lambda targets through the invoker."""

    def __init__(self, invoker: Invoker) -> None:
        self.invoker = invoker
        self._original: Any = None

    def install(self) -> None:
        if self._original is not None:
            return
        self._original = original = Rule.send_to_targets
        invoker = self.invoker

        def send_to_targets(rule: Rule, event: Any, transform_input: bool = True) -> None:
            # A scheduled rule has no pattern: moto would match it to every event put on the
            # bus, EventBridge to none (the schedule loop fires it instead).
            if rule.scheduled_expression and rule.event_pattern._raw_pattern is None:
                return
            lambda_targets = [t for t in rule.targets if ":lambda:" in t["Arn"]]
            if lambda_targets and rule.event_pattern.matches_event(event):
                sent = _as_sent(event)
                for target in lambda_targets:
                    payload = json.loads(target["Input"]) if target.get("Input") else sent
                    invoker.invoke_async(target["Arn"].rsplit(":", 1)[-1], payload)
            others = [t for t in rule.targets if t not in lambda_targets]
            if others:
                # A copy: another request may be delivering through the same rule right now.
                rest = copy.copy(rule)
                rest.targets = others
                original(rest, event, transform_input)

        Rule.send_to_targets = send_to_targets  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._original is not None:
            Rule.send_to_targets = self._original  # type: ignore[method-assign]
            self._original = None
