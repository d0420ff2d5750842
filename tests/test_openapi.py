"""The OpenAPI 3.1 document at /api/v1/openapi.json and the page at /api/v1/docs (issue #7)."""

from __future__ import annotations

import re

import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from server.http.errors import STATUS
from server.http.web import CSP

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}


@pytest.fixture
def spec(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def api_routes(app):
    """(method, OpenAPI path) of every route under /api/, HEAD and OPTIONS left out as Flask
    adds them to every GET."""
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                yield method.lower(), path


def test_every_api_route_is_documented_with_its_method(app, spec):
    routes = set(api_routes(app))
    documented = {
        (method, path) for path, operations in spec["paths"].items() for method in operations
    }
    assert len(routes) > 40
    assert routes - documented == set()
    assert {(m, p) for m, p in documented if m != "head"} - routes == set()


def test_the_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"] == "3.1.0"
    OPENAPI_31_VALIDATOR.validate(spec)
    for name, schema in spec["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name


def test_every_reference_resolves(spec):
    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = set(refs(spec))
    assert found
    for ref in found:
        _, section, name = ref.removeprefix("#/").split("/")
        assert name in spec["components"][section], ref


def test_path_parameters_are_declared_and_operation_ids_unique(spec):
    ids = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert method.upper() in METHODS
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), (method, path)
            ids.append(operation["operationId"])
    assert len(ids) == len(set(ids))


def test_signed_in_operations_use_the_bearer_scheme_and_answer_401(spec):
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert spec["security"] == [{"bearer": []}]
    public = set()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if operation.get("security") == []:
                public.add((method, path))
            else:
                assert "401" in operation["responses"], (method, path)
    assert ("post", "/api/v1/devices") in public
    assert ("get", "/api/v1/sync/pull") not in public
    users = spec["paths"]["/api/v1/admin/users"]["get"]
    assert users["x-roles"] == ["admin"] and "403" in users["responses"]


def test_errors_are_one_reusable_component_with_the_contract_shape(spec):
    error = spec["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "details"]
    assert set(error["properties"]["error"]["properties"]["code"]["enum"]) == set(STATUS)
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    assert answer["$ref"].startswith("#/components/responses/"), (path, status)
    validation = spec["components"]["responses"]["ValidationFailed"]
    assert validation["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


def test_query_parameters_and_request_bodies_come_from_the_marshmallow_schemas(spec):
    pull = spec["paths"]["/api/v1/sync/pull"]["get"]["parameters"]
    limit = next(p for p in pull if p["name"] == "limit")
    assert limit["in"] == "query" and limit["schema"]["maximum"] == 5000
    coverage = spec["paths"]["/api/v1/reports/coverage"]["get"]["parameters"]
    assert {p["name"]: p["required"] for p in coverage} == {
        "period": True,
        "region_id": True,
        "as_of": False,
    }
    body = spec["paths"]["/api/v1/devices"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/DeviceRegistration"}
    registration = spec["components"]["schemas"]["DeviceRegistration"]
    assert set(registration["required"]) == {"username", "password"}
    envelope = spec["components"]["schemas"]["PushEnvelope"]
    assert envelope["properties"]["ops"]["items"] == {"$ref": "#/components/schemas/Op"}
    assert spec["components"]["schemas"]["RegionCreate"]["additionalProperties"] is False


def test_the_docs_page_renders_every_operation_without_inline_script_or_style(client, spec):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CSP
    html = response.get_data(as_text=True)
    assert "接口文档" in html and 'href="/api/v1/openapi.json"' in html
    for operations in spec["paths"].values():
        for operation in operations.values():
            assert f'id="{operation["operationId"]}"' in html
            assert operation["summary"] in html
    assert "<script" not in html and "style=" not in html and "<style" not in html
    css = client.get("/api/v1/docs.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
