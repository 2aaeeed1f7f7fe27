"""The OpenAPI document describes every error a client can get as problem+json."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

PROBLEM_SCHEMAS = {"#/components/schemas/Problem", "#/components/schemas/ValidationProblem"}


async def openapi(client: AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


async def test_every_error_response_is_a_problem(client: AsyncClient) -> None:
    document = await openapi(client)
    errors = 0
    for name, operation in operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            errors += 1
            assert set(response["content"]) == {"application/problem+json"}, (name, status)
            schema = response["content"]["application/problem+json"]["schema"]
            expected = "ValidationProblem" if status == "422" else "Problem"
            assert schema == {"$ref": f"#/components/schemas/{expected}"}, (name, status)
    assert errors > 0


async def test_fastapi_default_validation_schema_is_gone(client: AsyncClient) -> None:
    document = await openapi(client)
    schemas = document["components"]["schemas"]

    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert set(schemas["ValidationProblem"]["required"]) >= {"type", "status", "errors"}
    assert "HTTPValidationError" not in str(document)


async def test_operations_with_input_declare_422_and_protected_ones_401(
    client: AsyncClient,
) -> None:
    document = await openapi(client)
    for name, operation in operations(document):
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in operation["responses"], name
        if operation.get("security"):
            assert "401" in operation["responses"], name
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], name


async def test_the_documented_problem_matches_a_real_one(client: AsyncClient) -> None:
    document = await openapi(client)
    problem = document["components"]["schemas"]["ValidationProblem"]

    response = await client.post("/api/v1/auth/register", json={"email": "not-an-e-mail"})

    assert response.status_code == 422
    body = response.json()
    assert set(problem["required"]) <= set(body)
    assert set(body["errors"][0]) == {"field", "message", "type"}
