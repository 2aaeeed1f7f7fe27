"""The real server as a process, over real HTTP, against real PostgreSQL{% if cookiecutter.use_redis == 'y' %} and Redis{% endif %}."""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.factories import PASSWORD, unique_email
from tests.processes import (
{%- if cookiecutter.use_celery == 'y' %}
    broker_url,
    delete_queue,
{%- endif %}
    fresh_database,
    running_server,
    server_env,
)
from tests.services import ServiceUrls

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def migrated_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    async with fresh_database(service_urls.database, migrated=True) as url:
        yield url


def test_serves_a_user_journey_and_stops_cleanly_on_sigterm(
    migrated_url: str, service_urls: ServiceUrls, tmp_path: Path
) -> None:
    env = server_env(migrated_url, service_urls)
    with running_server(env, tmp_path / "server.log") as (base_url, server):
        with httpx.Client(base_url=base_url, timeout=10) as http:
            email = unique_email()
            registered = http.post(
                "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
            )
            assert registered.status_code == 201, registered.text
            assert registered.headers["x-request-id"]

            login = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            assert login.status_code == 200, login.text
            tokens = login.json()
            assert tokens["token_type"].lower() == "bearer"
            auth = {"Authorization": f"Bearer {tokens['access_token']}"}

            me = http.get("/api/v1/users/me", headers=auth)
            assert me.status_code == 200, me.text
            assert me.json()["email"] == email
            assert http.get("/api/v1/users/me").status_code == 401
{%- if cookiecutter.include_example_domain == 'y' %}

            created = http.post("/api/v1/items", json={"title": "first item"}, headers=auth)
            assert created.status_code == 201, created.text
            item_id = created.json()["id"]
            fetched = http.get(f"/api/v1/items/{item_id}", headers=auth)
            assert fetched.status_code == 200, fetched.text
            assert fetched.json()["title"] == "first item"
{%- endif %}

            ready = http.get("/health/ready")
            assert ready.status_code == 200, ready.text
            checks = ready.json()["checks"]
            assert checks["database"]["status"] == "ok"
{%- if cookiecutter.use_redis == 'y' %}
            assert checks["redis"]["status"] == "ok"
{%- endif %}
{%- if cookiecutter.use_celery == 'y' %}
            assert checks["broker"]["status"] == "ok"
{%- endif %}

        stopping = time.monotonic()
        exit_code = server.stop(timeout=15)
        stopped_after = time.monotonic() - stopping
        log = server.log()
{%- if cookiecutter.use_celery == 'y' %}
    delete_queue(broker_url(service_urls), env["CELERY_QUEUE"])  # tasks nobody consumed here
{%- endif %}

    # uvicorn shuts down gracefully, then re-raises SIGTERM so supervisors see why it ended.
    assert exit_code in (0, -signal.SIGTERM), f"exit {exit_code}:\n{log}"
    assert stopped_after < 10, f"took {stopped_after:.1f}s to stop"
    assert "Application shutdown complete" in log
    assert '"event": "stopped"' in log, "the lifespan did not run its shutdown"
    assert "Traceback" not in log
