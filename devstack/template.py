"""Reads template.yaml, so the local stack creates what the deployment declares.

CloudFormation's short-form tags (!Ref, !Sub, !GetAtt, ...) become their long form
({"Ref": ...}, {"Fn::Sub": ...}); nothing is evaluated here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """A safe loader that also accepts CloudFormation's tags."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix == "Ref" or suffix == "Condition" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        # !GetAtt Resource.Attribute is shorthand for the list form.
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


@dataclass(frozen=True)
class Template:
    body: dict[str, Any]
    path: Path

    def resources(self, *types: str) -> dict[str, dict[str, Any]]:
        """Logical ID -> resource, for every resource of the given types."""
        resources: dict[str, dict[str, Any]] = self.body.get("Resources") or {}
        return {rid: res for rid, res in resources.items() if res.get("Type") in types}

    def function_globals(self) -> dict[str, Any]:
        globals_: dict[str, Any] = (self.body.get("Globals") or {}).get("Function") or {}
        return globals_


def load_template(path: Path = TEMPLATE_PATH) -> Template:
    body = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)
    if not isinstance(body, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return Template(body=body, path=path)


def properties(resource: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = resource.get("Properties") or {}
    return props
