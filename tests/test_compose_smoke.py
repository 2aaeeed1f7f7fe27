"""Run the baked project's compose services (`migrate`, `api`, `worker`) as host processes.

The commands come from the baked docker-compose.yml, so a command that does not exist, or a
wiring mistake between the API, the broker and the worker, fails here without needing Docker.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support import (
    Bake,
    Services,
    asyncpg_url,
    child_environment,
    free_port,
    fresh_database,
    run,
    start,
    stop,
    tail,
    wait_for_http,
)

# Run with the baked project's interpreter, which has kombu: delete a queue, its messages, and
# the exchange Celery names after it. Declaring first tells the channel the binding, so deleting
# removes it too (on Redis a binding is a key of its own).
DELETE_QUEUE = """
import sys
from kombu import Connection, Exchange, Queue
url, name = sys.argv[1:]
with Connection(url, connect_timeout=5) as connection:
    exchange = Exchange(name, type="direct").bind(connection.default_channel)
    queue = Queue(name, exchange, routing_key=name).bind(connection.default_channel)
    queue.declare()
    queue.delete()
    exchange.delete()
"""


def compose_services(project: Path) -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((project / "docker-compose.yml").read_text())
    services: dict[str, Any] = compose["services"]
    return services


def local_environment(compose_env: Mapping[str, Any], local: Mapping[str, str]) -> dict[str, str]:
    """A service's compose environment with its in-network addresses and secrets made `local`."""
    unmapped = sorted(
        key for key, value in compose_env.items() if key not in local and "${" in str(value)
    )
    assert unmapped == [], f"no local value for the compose variables {unmapped}"
    literal = {key: str(value) for key, value in compose_env.items() if key not in local}
    return child_environment(**literal, **local)


def host_command(command: list[str], *, port: int | None = None) -> list[str]:
    """The compose command run through the baked virtualenv, on loopback and `port`."""
    command = list(command)
    if port is not None:
        assert "--port" in command, f"cannot move {command} off port 8000: it has no --port"
        command[command.index("--port") + 1] = str(port)
        if "--host" in command:
            command[command.index("--host") + 1] = "127.0.0.1"
    return ["uv", "run", "--no-sync", *command]


def wait_until_welcomed(base_url: str, *, log: Path, timeout: float = 60) -> dict[str, Any]:
    """Register a user, log in, and poll /users/me until the worker has sent the welcome e-mail."""
    credentials = {
        "email": f"smoke-{uuid.uuid4().hex[:8]}@example.com",
        "password": secrets.token_urlsafe(16),
    }
    with httpx.Client(base_url=base_url, timeout=10) as client:
        registered = client.post("/api/v1/auth/register", json=credentials)
        assert registered.status_code == httpx.codes.CREATED, registered.text
        login = client.post("/api/v1/auth/login", json=credentials)
        assert login.status_code == httpx.codes.OK, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            me = client.get("/api/v1/users/me", headers=headers)
            assert me.status_code == httpx.codes.OK, me.text
            user: dict[str, Any] = me.json()
            if user["welcome_email_sent_at"] is not None:
                return user
            time.sleep(0.5)
    raise AssertionError(
        f"the worker did not send the welcome e-mail within {timeout:.0f}s:\n"
        f"{tail(log.read_text(errors='replace'))}"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "combination",
    [
        pytest.param({}, id="celery-on-redis"),
        pytest.param({"use_redis": "n"}, id="celery-on-rabbitmq"),
    ],
)
def test_compose_services_run_on_the_host(
    bake: Bake, services: Services, tmp_path: Path, combination: dict[str, str]
) -> None:
    project = bake(**combination)
    compose = compose_services(project)
    run(["uv", "sync"], cwd=project)
    port = free_port()
    started: list[subprocess.Popen[bytes]] = []

    with fresh_database(services) as database_url:
        redis_url = services.redis_url
        broker = str(compose["worker"]["environment"].get("CELERY_BROKER_URL", ""))
        broker_url = services.amqp_url if broker.startswith("amqp") else redis_url
        # A queue of this run's own: the shared broker's other users never see its tasks.
        queue = f"{project.name}-{services.namespace}-{uuid.uuid4().hex[:8]}"
        local = {
            "DATABASE_URL": asyncpg_url(database_url),
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": broker_url,
            "CELERY_QUEUE": queue,
            # Redis keys of this run's own (rate limits, failed logins, revoked tokens).
            "REDIS_KEY_PREFIX": f"{queue}:",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        }

        def environment(name: str) -> dict[str, str]:
            return local_environment(compose[name].get("environment", {}), local)

        def launch(name: str, *, port: int | None = None) -> tuple[subprocess.Popen[bytes], Path]:
            log = tmp_path / f"{name}.log"
            command = host_command(compose[name]["command"], port=port)
            started.append(start(command, cwd=project, env=environment(name), log=log))
            return started[-1], log

        try:
            run(
                host_command(compose["migrate"]["command"]), cwd=project, env=environment("migrate")
            )
            api, api_log = launch("api", port=port)
            _, worker_log = launch("worker")
            base_url = f"http://127.0.0.1:{port}"
            wait_for_http(f"{base_url}/health/ready", process=api, log=api_log)

            user = wait_until_welcomed(base_url, log=worker_log)

            assert user["welcome_email_sent_at"] is not None
        finally:
            for process in reversed(started):
                stop(process)
            # Whatever the worker did not take (nothing, when the test passed) goes too.
            run(
                ["uv", "run", "--no-sync", "python", "-c", DELETE_QUEUE, broker_url, queue],
                cwd=project,
            )
