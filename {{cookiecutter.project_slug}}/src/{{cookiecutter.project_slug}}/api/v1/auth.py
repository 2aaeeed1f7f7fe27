"""Registration, login, token refresh and logout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status
from pydantic import ValidationError

from {{ cookiecutter.project_slug }}.api import cookies
from {{ cookiecutter.project_slug }}.api.deps import (
    AuthServiceDep,
    ContainerDep,
    SessionUser,
    UserServiceDep,
)
from {{ cookiecutter.project_slug }}.api.openapi import problem_responses
from {{ cookiecutter.project_slug }}.container import Container
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
async def login(
    request: Request, response: Response, auth: AuthServiceDep, container: ContainerDep
) -> TokenPair:
    """Exchange e-mail and password for tokens (JSON, or the OAuth2 password form).

    After repeated failures for the account or the client address, attempts get 429 with
    `Retry-After` until the window passes, without the password being checked. In browser
    mode the refresh token is set as an HttpOnly cookie, with a CSRF cookie beside it.
    """
    credentials = await _read_credentials(request)
    client = container.client_addresses.client_key(request.scope)
    pair = await auth.login(credentials.email, credentials.password, client=client)
    return _deliver(pair, response, container)


@router.post(
    "/refresh",
    response_model=TokenPair,
    responses=problem_responses(401, 403, 413, 422, 503),
)
async def refresh(
    request: Request,
    response: Response,
    auth: AuthServiceDep,
    container: ContainerDep,
    data: Annotated[RefreshRequest | None, Body()] = None,
) -> TokenPair:
    """Exchange a refresh token for a new pair; the presented refresh token is retired.

    Presenting a retired refresh token again ends every session descended from its login.
    In browser mode the token comes from its cookie and `X-CSRF-Token` must match the CSRF
    cookie (403 otherwise).
    """
    pair = await auth.refresh(_refresh_token(request, data, container))
    return _deliver(pair, response, container)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 413, 422, 503),
)
async def logout(
    request: Request,
    _: SessionUser,
    auth: AuthServiceDep,
    container: ContainerDep,
    data: Annotated[RefreshRequest | None, Body()] = None,
) -> Response:
    """Revoke the access token this request carries and end the given refresh token's session
    (in browser mode: the cookie's, with the CSRF check, and the cookies are cleared)."""
    principal = credentials_of(request.scope).principal
    if principal is None:  # SessionUser has already refused such requests
        raise AuthenticationError("send a bearer token in the Authorization header")
    await auth.logout(principal.claims, _refresh_token(request, data, container))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    if container.settings.auth_cookie_mode:
        cookies.clear_session_cookies(response)
    return response


def _refresh_token(request: Request, data: RefreshRequest | None, container: Container) -> str:
    """The body's refresh token, or in browser mode the cookie's once the CSRF check passed."""
    if container.settings.auth_cookie_mode:
        cookies.check_csrf(request)
        return cookies.refresh_cookie(request)
    if data is None:
        message = "send the refresh token as `refresh_token` in a JSON body"
        raise ValidationFailedError(
            message, errors=[{"field": "refresh_token", "message": message, "type": "missing"}]
        )
    return data.refresh_token


def _deliver(pair: TokenPair, response: Response, container: Container) -> TokenPair:
    if not container.settings.auth_cookie_mode:
        return pair
    ttl = container.settings.refresh_token_ttl_seconds
    return cookies.set_session_cookies(response, pair, max_age=ttl)


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
