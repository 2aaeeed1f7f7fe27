"""Registration, login, token refresh and logout."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from pydantic import ValidationError

from {{ cookiecutter.project_slug }}.api.deps import (
    AuthServiceDep,
    ContainerDep,
    SessionUser,
    UserServiceDep,
)
from {{ cookiecutter.project_slug }}.api.openapi import problem_responses
from {{ cookiecutter.project_slug }}.core.errors import (
    AuthenticationError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from {{ cookiecutter.project_slug }}.middleware.auth import credentials_of
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.schemas.auth import LoginRequest, RefreshRequest, TokenPair
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
    responses=problem_responses(401, 413, 415, 422, 429, 503),
    openapi_extra={"requestBody": _LOGIN_BODY},
)
async def login(request: Request, auth: AuthServiceDep, container: ContainerDep) -> TokenPair:
    """Exchange e-mail and password for tokens (JSON, or the OAuth2 password form).

    After repeated failures for the account or the client address, attempts get 429 with
    `Retry-After` until the window passes, without the password being checked.
    """
    credentials = await _read_credentials(request)
    client = container.client_addresses.client_key(request.scope)
    return await auth.login(credentials.email, credentials.password, client=client)


@router.post("/refresh", response_model=TokenPair, responses=problem_responses(401, 413, 422, 503))
async def refresh(data: RefreshRequest, auth: AuthServiceDep) -> TokenPair:
    """Exchange a refresh token for a new pair; the presented refresh token is retired.

    Presenting a retired refresh token again ends every session descended from its login.
    """
    return await auth.refresh(data.refresh_token)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 413, 422, 503),
)
async def logout(
    request: Request, data: RefreshRequest, _: SessionUser, auth: AuthServiceDep
) -> Response:
    """Revoke the access token this request carries and end the given refresh token's session."""
    principal = credentials_of(request.scope).principal
    if principal is None:  # SessionUser has already refused such requests
        raise AuthenticationError("send a bearer token in the Authorization header")
    await auth.logout(principal.claims, data.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


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
