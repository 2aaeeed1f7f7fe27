"""Registration and login."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from pydantic import ValidationError

from {{ cookiecutter.project_slug }}.api.deps import AuthServiceDep, UserServiceDep
from {{ cookiecutter.project_slug }}.api.openapi import problem_responses
from {{ cookiecutter.project_slug }}.core.errors import (
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.schemas.auth import LoginRequest, TokenPair
from {{ cookiecutter.project_slug }}.schemas.user import UserCreate, UserRead

router = APIRouter(prefix="/auth", tags=["auth"])

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Documented by hand because the route reads the body itself to accept two encodings.
_LOGIN_BODY = {
    "content": {
        "application/json": {"schema": LoginRequest.model_json_schema()},
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["username", "password"],
                "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
            }
        },
    },
    "required": True,
}


@router.post(
    "/register",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 413, 422),
)
async def register(data: UserCreate, users: UserServiceDep) -> User:
    """Create an account."""
    return await users.register(data)


@router.post(
    "/login",
    response_model=TokenPair,
    responses=problem_responses(401, 413, 415, 422),
    openapi_extra={"requestBody": _LOGIN_BODY},
)
async def login(request: Request, auth: AuthServiceDep) -> TokenPair:
    """Exchange e-mail and password for tokens (JSON, or the OAuth2 password form)."""
    credentials = await _read_credentials(request)
    return await auth.login(credentials.email, credentials.password)


async def _read_credentials(request: Request) -> LoginRequest:
    # One route serves both Swagger's OAuth2 password form and JSON clients.
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            return LoginRequest.model_validate_json(await request.body())
        if content_type.startswith(FORM_TYPES):
            form = await request.form()
            return LoginRequest.model_validate(
                {"email": form.get("username"), "password": form.get("password")}
            )
    except ValidationError as exc:
        raise ValidationFailedError(
            "the login request has invalid fields; see `errors`",
            errors=[
                {
                    "field": ".".join(str(part) for part in error["loc"]) or "body",
                    "message": error["msg"],
                    "type": error["type"],
                }
                for error in exc.errors()
            ],
        ) from None
    raise UnsupportedMediaTypeError("send JSON or application/x-www-form-urlencoded credentials")
