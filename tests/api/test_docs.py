"""The OpenAPI schema and its docs page: complete, valid, and served without the internet."""

import re

import pytest
from django.test import Client
from drf_spectacular.validation import validate_schema


@pytest.fixture
def schema(db):
    response = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_schema_is_served_in_yaml_too(db):
    """The default rendering: every value in the schema must be plain YAML (an enum member of
    a model's choices is not)."""
    response = Client().get("/api/v1/schema/")
    assert response.status_code == 200
    assert b"ApprovalRequestCreateRequest" in response.content


@pytest.mark.parametrize(
    "operation", ["/api/v1/approvals/", "/api/v1/exceptions/{id}/resolve/", "/api/v1/tokens/"]
)
def test_a_body_that_must_be_given_is_required(schema, operation):
    assert schema["paths"][operation]["post"]["requestBody"]["required"] is True


@pytest.mark.parametrize(
    ("operation", "field"),
    [
        ("/api/v1/approvals/{id}/delegate/", "delegate"),
        ("/api/v1/exceptions/{id}/assign/", "owner_id"),
    ],
)
def test_a_name_in_the_body_that_finds_no_one_is_documented_as_404(schema, operation, field):
    """The 404 of these operations says what else it means there, with the problem body."""
    responses = schema["paths"][operation]["post"]["responses"]
    assert f"`{field}`" in responses["404"]["description"]
    problem = responses["404"]["content"]["application/problem+json"]
    assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert f"`{field}`" not in responses["422"]["description"]


def test_required_text_of_spaces_only_is_outside_the_schema(schema):
    """DRF trims text before it checks that it is not blank: the schema says so."""
    reason = schema["components"]["schemas"]["RejectRequest"]["properties"]["reason"]["pattern"]
    assert re.search(reason, " over budget ")
    assert not re.search(reason, " \t\n ")
    assert not re.search(reason, "over\x00budget")


def test_schema_is_valid_openapi_3_1(schema):
    assert schema["openapi"].startswith("3.1")
    validate_schema(schema)


def test_every_problem_response_shows_an_example_of_each_code_it_can_carry(schema):
    from portal.api.problems import CATALOGUE

    for path, item in schema["paths"].items():
        if path.startswith("/api/v1/webhooks/"):
            continue
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status.startswith("2"):
                    continue
                examples = response["content"]["application/problem+json"]["examples"]
                expected = {code for code, (of, _) in CATALOGUE.items() if str(of) == status}
                assert set(examples) == expected, (method, path, status)
                for code, example in examples.items():
                    assert example["value"]["code"] == code
                    assert str(example["value"]["status"]) == status


def test_token_security_scheme_and_problem_schema_are_documented(schema):
    assert schema["components"]["securitySchemes"]["tokenAuth"]["scheme"] == "bearer"
    problem = schema["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])
    assert "token_read_only" in problem["properties"]["code"]["enum"]


def test_every_api_operation_documents_its_problems(schema):
    for path, item in schema["paths"].items():
        if path.startswith("/api/v1/webhooks/"):
            continue
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert {"401", "403", "429", "500"} <= codes, (method, path)
            assert "application/problem+json" in operation["responses"]["429"]["content"]
            assert "Retry-After" in operation["responses"]["429"]["headers"]
            if method in {"post", "put", "patch", "delete"}:
                names = {p["name"] for p in operation.get("parameters", [])}
                assert "Idempotency-Key" in names, (method, path)
                assert {"409", "422"} <= codes, (method, path)


def test_token_endpoints_are_documented(schema):
    assert {"get", "post"} <= set(schema["paths"]["/api/v1/tokens/"])
    assert "post" in schema["paths"]["/api/v1/tokens/{id}/revoke/"]
    created = schema["paths"]["/api/v1/tokens/"]["post"]["responses"]["201"]
    ref = created["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "token" in schema["components"]["schemas"][ref]["properties"]


def test_inbound_webhook_is_documented_with_payloads_examples_and_answers(schema):
    operation = schema["paths"]["/api/v1/webhooks/{source}/"]["post"]
    assert set(operation["responses"]) == {"200", "202", "400", "401", "404", "413", "422"}
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    body = operation["requestBody"]["content"]["application/json"]
    titles = {option["title"] for option in body["schema"]["anyOf"]}
    assert {"Carrier event", "Supplier event"} <= titles
    assert len(body["examples"]) == 3
    assert operation["security"] == [{}] or "security" not in operation


def test_outbound_webhooks_are_documented(schema):
    assert "approval.decided" in schema.get("webhooks", {})


def test_docs_page_loads_only_local_assets(db):
    client = Client()
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, "the page should load Swagger UI"
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))]
    assert "<style" not in html and "<script>" not in html  # nothing inline, for the CSP
    script = next(s for s in sources if "swagger-ui-bundle" in s)
    asset = client.get(script)
    assert asset.status_code == 200
    assert b"".join(asset.streaming_content if asset.streaming else [asset.content])
