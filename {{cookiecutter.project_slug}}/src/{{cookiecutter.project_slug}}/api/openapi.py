"""The OpenAPI document tells the truth about errors.

Routes declare the problems they can answer with `problem_responses(...)`; every one is served as
`application/problem+json` with the `Problem` schema (`ValidationProblem` for 422).
`install_problem_schemas` adds those schemas to the document and replaces FastAPI's default 422
schema, a shape this service never sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from {{ cookiecutter.project_slug }}.core.errors import PROBLEM_MEDIA_TYPE

SCHEMA_REF = "#/components/schemas/{model}"


class Problem(BaseModel):
    """RFC 9457 problem details; some problems add members (readiness adds `checks`)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None
    request_id: str | None


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class ValidationProblem(Problem):
    """A 422 problem: which fields were refused, and why."""

    errors: list[FieldError]


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing, invalid or expired credentials",
    403: "Authenticated, but not allowed",
    404: "No such resource (or not visible to the caller)",
    409: "Conflicts with an existing resource",
    412: "The resource changed since the given version",
    413: "Request body too large",
    415: "Body is not in a supported media type",
    422: "Invalid fields; see `errors`",
    429: "Too many requests; retry after `Retry-After` seconds",
    503: "A dependency is unavailable; retry after `Retry-After` seconds",
}
_HEADERS = {
    401: {"WWW-Authenticate": "Bearer"},
    429: {"Retry-After": "Seconds to wait before retrying"},
    503: {"Retry-After": "Seconds to wait before retrying"},
}


def _problem_content(status: int) -> dict[str, Any]:
    model = ValidationProblem if status == 422 else Problem
    return {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": SCHEMA_REF.format(model=model.__name__)}}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can answer with these problem statuses."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "description": _DESCRIPTIONS[status],
            "content": _problem_content(status),
        }
        if status in _HEADERS:
            response["headers"] = {
                name: {"description": description, "schema": {"type": "string"}}
                for name, description in _HEADERS[status].items()
            }
        responses[status] = response
    return responses


def install_problem_schemas(app: FastAPI) -> None:
    """Serve an OpenAPI document whose error responses are all problem details."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _document_problems(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_problems(document: dict[str, Any]) -> None:
    _, definitions = models_json_schema(
        [(Problem, "serialization"), (ValidationProblem, "serialization")],
        ref_template=SCHEMA_REF,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(definitions["$defs"])
    # FastAPI adds its own 422 to every route with parameters; this service never sends it.
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                responses["422"] = problem_responses(422)[422]
