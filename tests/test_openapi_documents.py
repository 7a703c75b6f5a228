"""Every published OpenAPI document (the four services and the gateway) is valid, and every ``$ref`` in it resolves
inside the document (a raw ``model_json_schema()`` can leave a ``#/$defs/…`` reference dangling, e.g. the bank results
body's ``ResultLineIn``, and openapi-spec-validator alone does not notice)."""

import pytest
from openapi_spec_validator import validate

from gateway.app import create_app as create_gateway
from services.kernel.openapi import ERROR_SCHEMA_NAME
from services.kernel.service_app import create_service_app
from services.kernel.settings import SERVICES
from sifund import services as catalogue

COMPONENTS = [*SERVICES, "gateway"]


def published_document(component: str, settings) -> dict:
    app = create_gateway(settings) if component == "gateway" else create_service_app(catalogue.spec(component), settings)
    return app.openapi()


def dangling_refs(document: dict) -> list[str]:
    """``$ref`` values that do not point at something in ``document`` (local JSON pointers only)."""
    missing = []

    def resolves(ref: str) -> bool:
        if not ref.startswith("#/"):
            return False
        node = document
        for token in ref[2:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or token not in node:
                return False
            node = node[token]
        return True

    def walk(node) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not resolves(ref):
                missing.append(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return missing


@pytest.fixture
def offline_settings(make_settings):
    return make_settings("nats://127.0.0.1:1")  # the document needs no bus: the app is built, never started


@pytest.mark.parametrize("component", COMPONENTS)
def test_published_document_validates_and_every_reference_resolves(component, offline_settings):
    document = published_document(component, offline_settings)
    validate(document)
    assert dangling_refs(document) == []


def test_a_dangling_reference_is_noticed():
    document = {"paths": {"/x": {"post": {"requestBody": {"content": {"application/json": {"schema": {
        "properties": {"lines": {"items": {"$ref": "#/$defs/ResultLineIn"}}}}}}}}}}}
    assert dangling_refs(document) == ["#/$defs/ResultLineIn"]


def test_bank_results_body_is_a_published_component(offline_settings):
    document = published_document("benefits", offline_settings)
    body = document["paths"]["/payroll/bank-files/{file_id}/results"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/ResultsIn"}
    assert "text/csv" in body
    schemas = document["components"]["schemas"]
    assert schemas["ResultsIn"]["properties"]["lines"]["items"] == {"$ref": "#/components/schemas/ResultLineIn"}


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_operation_declares_the_refusals_it_answers_with(component, offline_settings):
    """Refusals are ``{"error": {"code", "message"}}`` (services/kernel/errors.py), declared as such; FastAPI's
    ``{"detail": [...]}`` 422 body is never sent and so never published."""
    document = published_document(component, offline_settings)
    error_ref = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            expected = {"400", "404", "409", "422"} | (set() if operation.get("x-sifund-public") else {"401", "403"})
            assert expected <= responses.keys(), f"{method} {path}: {sorted(responses)}"
            for status in expected:
                assert responses[status]["content"]["application/json"]["schema"] == error_ref, f"{method} {path}"
    assert "HTTPValidationError" not in document["components"]["schemas"]
