"""A real Celery worker process picks up what the real server enqueues after each commit."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from kombu import Connection, Exchange, Queue
{%- if cookiecutter.use_redis == 'y' %}
from redis import Redis
{%- endif %}
from sqlalchemy.engine import make_url

from tests.factories import PASSWORD, unique_email
from tests.processes import (
    SLUG,
    broker_url,
    celery_worker,
    delete_queue,
    fresh_database,
    running_server,
    server_env,
    started_process,
)
from tests.proxy import CuttableProxy, cuttable_proxy
from tests.services import ServiceUrls, namespace

pytestmark = pytest.mark.slow


def solo() -> list[str]:
    """A worker running one task at a time, in its own process (a new node name each call)."""
    return celery_worker("--pool=solo", "--concurrency=1")


@pytest.fixture(scope="module")
async def migrated_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    async with fresh_database(service_urls.database, migrated=True) as url:
        yield url


def poll(fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> bool:
    """Fetch until `done` (True) or two minutes pass (False): a busy machine is slow, not wrong."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if done(fetch()):
            return True
        time.sleep(0.25)
    return False


def test_worker_runs_the_follow_up_tasks(
    migrated_url: str, service_urls: ServiceUrls, tmp_path: Path
) -> None:
    env = server_env(migrated_url, service_urls)
    with (
        started_process(solo(), env=env, log_path=tmp_path / "worker.log") as worker,
        running_server(env, tmp_path / "server.log") as (base_url, _),
        httpx.Client(base_url=base_url, timeout=10) as http,
    ):
        email = unique_email()
        registered = http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        assert registered.json()["welcome_email_sent_at"] is None
        login = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}

        def me() -> dict[str, Any]:
            response = http.get("/api/v1/users/me", headers=auth)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        welcomed = poll(me, lambda user: user["welcome_email_sent_at"] is not None)
        assert welcomed, f"no welcome e-mail within 120s; worker log:\n{worker.log()}"
{%- if cookiecutter.include_example_domain == 'y' %}

        created = http.post("/api/v1/items", json={"title": "process me"}, headers=auth)
        assert created.status_code == 201, created.text
        item_id = created.json()["id"]

        def item() -> dict[str, Any]:
            response = http.get(f"/api/v1/items/{item_id}", headers=auth)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        processed = poll(item, lambda body: body["processed_at"] is not None)
        assert processed, f"item not processed within 120s; worker log:\n{worker.log()}"
{%- endif %}

        worker_exit = worker.stop(timeout=20)
    delete_queue(broker_url(service_urls), env["CELERY_QUEUE"])

    # Celery's warm shutdown on SIGTERM finishes the current task and exits cleanly.
    assert worker_exit == 0, worker.log()


def through(proxy: CuttableProxy, database_url: str) -> str:
    return make_url(database_url).set(port=proxy.port).render_as_string(hide_password=False)


def database_proxy(database_url: str) -> AbstractContextManager[CuttableProxy]:
    """A proxy to the database that refuses connections until the test restores it."""
    url = make_url(database_url)
    return cuttable_proxy(url.host or "127.0.0.1", url.port or 5432, listening=False)


def wait_for(condition: Callable[[], bool], what: str, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, f"{what} within 120s; worker log:\n{log()}"
        time.sleep(0.25)


def welcomed(http: httpx.Client, email: str) -> Callable[[], bool]:
    login = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}

    def check() -> bool:
        response = http.get("/api/v1/users/me", headers=auth)
        assert response.status_code == 200, response.text
        return response.json()["welcome_email_sent_at"] is not None

    return check


def test_a_transient_database_error_is_retried_with_backoff_until_it_succeeds(
    migrated_url: str, service_urls: ServiceUrls, tmp_path: Path
) -> None:
    env = server_env(migrated_url, service_urls)
    with database_proxy(migrated_url) as proxy:
        # The worker's database refuses connections until the proxy starts listening.
        worker_env = {**env, "DATABASE_URL": through(proxy, migrated_url)}
        with (
            started_process(solo(), env=worker_env, log_path=tmp_path / "worker.log") as worker,
            running_server(env, tmp_path / "server.log") as (base_url, _),
            httpx.Client(base_url=base_url, timeout=10) as http,
        ):
            email = unique_email()
            registered = http.post(
                "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
            )
            assert registered.status_code == 201, registered.text

            wait_for(lambda: "retry: Retry in" in worker.log(), "no retry", worker.log)
            proxy.restore()
            wait_for(welcomed(http, email), "no welcome e-mail after the retry", worker.log)
            worker.stop(timeout=20)
    delete_queue(broker_url(service_urls), env["CELERY_QUEUE"])

    assert worker.log().count("welcome e-mail sent") == 1


def test_a_worker_killed_mid_task_loses_nothing_and_the_effect_happens_once(
    migrated_url: str, service_urls: ServiceUrls, tmp_path: Path
) -> None:
    visibility_timeout = 5  # Redis broker: when an unacknowledged task is handed out again
    env = {
        **server_env(migrated_url, service_urls),
        "CELERY_VISIBILITY_TIMEOUT_SECONDS": str(visibility_timeout),
    }
    with (
        database_proxy(migrated_url) as proxy,
        running_server(env, tmp_path / "server.log") as (base_url, _),
        httpx.Client(base_url=base_url, timeout=10) as http,
    ):
        # The first worker's database accepts its connection and never answers: the relay
        # task is stuck mid-run when the worker is killed.
        proxy.restore(forward=False)
        first_env = {**env, "DATABASE_URL": through(proxy, migrated_url)}
        with started_process(solo(), env=first_env, log_path=tmp_path / "first.log") as first:
            email = unique_email()
            registered = http.post(
                "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
            )
            assert registered.status_code == 201, registered.text
            wait_for(lambda: proxy.accepted > 0, "the task never reached the database", first.log)
            first.process.send_signal(signal.SIGKILL)
            assert first.process.wait(timeout=20) == -signal.SIGKILL
        # RabbitMQ requeues at once when the connection drops; Redis once the task has been
        # unacknowledged for the visibility timeout, checked when a worker starts.
        time.sleep(visibility_timeout + 1)
        with started_process(solo(), env=env, log_path=tmp_path / "second.log") as second:
            wait_for(welcomed(http, email), "the task was not redelivered", second.log)
            second.stop(timeout=20)
    delete_queue(broker_url(service_urls), env["CELERY_QUEUE"])

    # This test's user only: the module's database may hold other tests' events too.
    sent = f'"to": "{email}"'
    assert sent not in first.log()
    assert second.log().count(sent) == 1


def test_delete_queue_leaves_nothing_in_the_broker(service_urls: ServiceUrls) -> None:
    """What the end-to-end tests use to clean up: no message, queue or binding survives it."""
    url = broker_url(service_urls)
    name = f"{SLUG}-{namespace()}-{uuid.uuid4().hex[:8]}"
    exchange = Exchange(name, type="direct")
    with Connection(url, connect_timeout=5) as connection:
        queue = Queue(name, exchange, routing_key=name)
        connection.Producer().publish(
            {"left": "behind"}, exchange=exchange, routing_key=name, declare=[queue]
        )

    delete_queue(url, name)
{% if cookiecutter.use_redis == 'y' %}
    assert list(Redis.from_url(url).scan_iter(match=f"*{name}*")) == []
{%- else %}
    with (
        Connection(url, connect_timeout=5) as connection,
        pytest.raises(connection.channel_errors),
    ):
        Queue(name).bind(connection.default_channel).queue_declare(passive=True)
{%- endif %}
