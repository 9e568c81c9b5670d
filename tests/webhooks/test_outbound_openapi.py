"""Every outbound event type is documented as an OpenAPI webhook with a body and an example."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from portal.webhooks.models import EventType


@pytest.fixture
def schema(db):
    return SchemaGenerator().get_schema(request=None, public=True)


def test_schema_documents_every_event_type_with_signing_headers_and_an_example(schema):
    webhooks = schema["webhooks"]
    assert sorted(webhooks) == sorted(EventType.values)
    for event_type, item in webhooks.items():
        operation = item["post"]
        content = operation["requestBody"]["content"]["application/json"]
        [example] = content["examples"].values()
        assert example["value"]["type"] == event_type
        assert set(example["value"]) == {"type", "timestamp", "data"}
        body = _component(schema, content["schema"]["$ref"])
        assert set(body["properties"]) == {"type", "timestamp", "data"}
        assert "webhook-signature" in operation["description"]
        assert set(operation["responses"]) == {"2XX", "410"}


def test_documented_examples_carry_every_documented_field(schema):
    for event_type, item in schema["webhooks"].items():
        content = item["post"]["requestBody"]["content"]["application/json"]
        [example] = content["examples"].values()
        body = _component(schema, content["schema"]["$ref"])
        data = _component(schema, body["properties"]["data"]["$ref"])
        variants = [_component(schema, one["$ref"]) for one in data.get("oneOf", [])] or [data]
        fields = [set(variant["properties"]) for variant in variants]
        assert set(example["value"]["data"]) in fields, event_type


def _component(schema: dict, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
