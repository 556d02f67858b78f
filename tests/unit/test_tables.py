"""The pynamodb models and template.yaml declare the same tables: the deployment and the code
cannot drift apart (a key type or index name differing would pass moto tests and break on AWS)."""

from __future__ import annotations

from typing import Any

import pytest
from pynamodb.models import Model

from devstack.template import load_template, properties
from platform_backup.adapters.tables import TABLES


def _keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return sorted((k["AttributeName"], k["KeyType"]) for k in schema)


def _model_definition(model: type[Model]) -> dict[str, Any]:
    schema = model._get_schema()
    return {
        "keys": _keys(schema["key_schema"]),
        "attributes": {
            (a["attribute_name"] if "attribute_name" in a else a["AttributeName"]): (
                a["attribute_type"] if "attribute_type" in a else a["AttributeType"]
            )
            for a in schema["attribute_definitions"]
        },
        "indexes": {
            index["index_name"] if "index_name" in index else index["IndexName"]: _keys(
                index["key_schema"] if "key_schema" in index else index["KeySchema"]
            )
            for index in schema.get("global_secondary_indexes", [])
        },
    }


def _template_definition(resource: dict[str, Any]) -> dict[str, Any]:
    props = properties(resource)
    return {
        "keys": _keys(props["KeySchema"]),
        "attributes": {
            a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]
        },
        "indexes": {
            index["IndexName"]: _keys(index["KeySchema"])
            for index in props.get("GlobalSecondaryIndexes", [])
        },
    }


@pytest.mark.parametrize("logical_id", sorted(TABLES))
def test_model_and_template_declare_the_same_table(logical_id: str) -> None:
    resources = load_template().resources("AWS::DynamoDB::Table")
    assert logical_id in resources, f"template.yaml has no table {logical_id}"
    model, _ = TABLES[logical_id]
    assert _model_definition(model) == _template_definition(resources[logical_id])


def test_every_template_table_has_a_model() -> None:
    assert set(load_template().resources("AWS::DynamoDB::Table")) == set(TABLES)
