"""The bare app: FastAPI, python-jose and SQLAlchemy doing the service's work, nothing around it.

No middleware, no dependency injection, no service layer, no logging: the same JSON for the
liveness probe, and for the item routes the same JWT checks and the same ORM statements. A
created item is only inserted: the service also records its event in the outbox and appends a
hash-chained audit entry, whose chain lock lets one creation commit at a time, so the POST row
measures those features too, not only the stack around them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from jose import JWTError, jwt
from sqlalchemy.ext.asyncio import {% if cookiecutter.include_example_domain == 'y' %}async_sessionmaker, {% endif %}create_async_engine

# FastAPI resolves the routes' annotations in this module's namespace, so Request lives here.
from starlette.requests import Request

from {{ cookiecutter.project_slug }}.core import security
{%- if cookiecutter.include_example_domain == 'y' %}
from {{ cookiecutter.project_slug }}.models.item import Item
from {{ cookiecutter.project_slug }}.models.user import User
{%- endif %}

HEALTH_PATH = "/health/live"
# The service's default pool (Settings.database_pool_size, overflow as large), so both servers
# can hold the same number of connections under load.
POOL_SIZE = 10


def subject(request: Request, secret_key: str) -> uuid.UUID:
    """The same checks as the service: algorithm allow-list, issuer, audience, type, jti."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(status_code=401)
    try:
        payload = jwt.decode(
            token,
            secret_key,
            algorithms=security.ALLOWED_ALGORITHMS,
            audience=security.AUDIENCE,
            issuer=security.ISSUER,
            options={"require_exp": True, "require_iat": True, "require_sub": True},
        )
        if payload.get("type") != "access" or not isinstance(payload.get("jti"), str):
            raise HTTPException(status_code=401)
        return uuid.UUID(str(payload["sub"]))
    except (JWTError, ValueError):
        raise HTTPException(status_code=401) from None
{%- if cookiecutter.include_example_domain == 'y' %}


def item_document(item: Item) -> dict[str, Any]:
    """What ItemRead would render, built by hand."""
    return {
        "id": item.id,
        "owner_id": item.owner_id,
        "title": item.title,
        "description": item.description,
        "version": item.version,
        "processed_at": item.processed_at,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }
{%- endif %}


def add_bare_routes(app: FastAPI, database_url: str, secret_key: str) -> None:
    """The bare routes on `app`, with a plain engine that the app's lifespan must dispose of."""
    # Plain engine: the service's choices (pre-ping, recycling) are part of what is measured.
    engine = create_async_engine(database_url, pool_size=POOL_SIZE, max_overflow=POOL_SIZE)
    app.state.bare_engine = engine

    @app.get(HEALTH_PATH)
    async def live() -> dict[str, Any]:
        return {"status": "ok", "checks": {}}
{%- if cookiecutter.include_example_domain == 'y' %}

    sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    # The service reads without a transaction (`without_transactions`); so does this.
    reads = async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"),
        expire_on_commit=False,
        autoflush=False,
    )

    @app.get("/api/v1/items/{item_id}")
    async def read_item(item_id: uuid.UUID, request: Request) -> dict[str, Any]:
        user_id = subject(request, secret_key)
        # The service's statements: the token's user, then the item.
        async with reads() as session:
            user = await session.get(User, user_id)
            if user is None or not user.is_active:
                raise HTTPException(status_code=401)
            item = await session.get(Item, item_id)
            if item is None or (item.owner_id != user.id and not user.is_admin):
                raise HTTPException(status_code=404)
            await session.commit()
            return item_document(item)

    @app.post("/api/v1/items", status_code=201)
    async def create_item(request: Request) -> dict[str, Any]:
        user_id = subject(request, secret_key)
        data = await request.json()
        async with sessions() as session:
            user = await session.get(User, user_id)
            if user is None or not user.is_active:
                raise HTTPException(status_code=401)
            item = Item(owner_id=user.id, title=data["title"], description=data.get("description"))
            # The service's repository flushes inside a savepoint; so does this.
            async with session.begin_nested():
                session.add(item)
            await session.commit()
            return item_document(item)
{%- endif %}


def create_bare_app() -> FastAPI:
    """The bare app on BENCH_DATABASE_URL, checking tokens signed with BENCH_SECRET_KEY."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.bare_engine.dispose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    add_bare_routes(app, os.environ["BENCH_DATABASE_URL"], os.environ["BENCH_SECRET_KEY"])
    return app
