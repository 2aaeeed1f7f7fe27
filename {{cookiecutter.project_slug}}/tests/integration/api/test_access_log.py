"""One access line per request, naming the route template as well as the raw path."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.logging import configure_logging
from {{ cookiecutter.project_slug }}.main import create_app


@pytest.fixture
async def logged_client(settings: Settings) -> AsyncIterator[tuple[AsyncClient, io.StringIO]]:
    app = create_app(settings.model_copy(update={"log_level": "INFO", "log_format": "json"}))
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    try:
        async with (
            LifespanManager(app) as manager,
            AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://t") as client,
        ):
            yield client, buffer
    finally:
        configure_logging("WARNING", "console")


def access_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger", "").endswith(".access")]


async def test_access_lines_carry_the_route_template(
    logged_client: tuple[AsyncClient, io.StringIO],
) -> None:
    client, buffer = logged_client
    user_id = uuid.uuid4()

    await client.get(f"/api/v1/users/{user_id}")
    await client.get("/no/such/route")

    matched, unmatched = access_lines(buffer)
    assert matched["path"] == f"/api/v1/users/{user_id}"
    assert matched["route"] == "/api/v1/users/{user_id}"
    assert matched["status"] == 401
    assert unmatched["path"] == "/no/such/route"
    assert unmatched["route"] is None
