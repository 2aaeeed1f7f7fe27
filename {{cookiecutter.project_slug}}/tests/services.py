"""Where the test suite finds PostgreSQL, Redis and the broker.

Order: TEST_* variables, then the local defaults, then testcontainers when Docker runs. When none
works, every test that needs the service fails at once with a message that says what to set; it
never skips. Tests that need no service (`make test-unit`) do not look for them.

Everything a run creates in those shared services (databases, Celery queues, Redis keys) carries
`namespace()`, so two checkouts, CI jobs or a developer's own data on one server never collide;
TEST_NAMESPACE moves it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULTS = {
    "TEST_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test",
    "TEST_REDIS_URL": "redis://127.0.0.1:6379",
    "TEST_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672//",
}
DEFAULT_PORTS = {"postgresql": 5432, "redis": 6379, "amqp": 5672}
# What to do when a service is missing; the README says the same.
HOW_TO_PROVIDE = (
    "Point them at running services, or start Docker and the tests start what is missing "
    "with testcontainers."
)
# Keeps `<slug>_<namespace>_<worker>_<id>` within PostgreSQL's 63-byte identifiers.
NAMESPACE_LENGTH = 16
_PROCESS_NAMESPACE = f"t{uuid.uuid4().hex[:7]}"


def namespace() -> str:
    """This run's prefix for names in shared services: TEST_NAMESPACE, else random per process.

    Lower-cased, with anything but letters, digits and `_` replaced, so it fits a database name,
    a queue name and a Redis key alike.
    """
    chosen = os.environ.get("TEST_NAMESPACE") or _PROCESS_NAMESPACE
    return re.sub(r"[^a-z0-9_]", "_", chosen.lower())[:NAMESPACE_LENGTH]


class ServicesUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServiceUrls:
    database: str
    redis: str
    amqp: str


def reachable(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme.split("+")[0], 0)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    result = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=10)
    return result.returncode == 0


def _from_containers(names: list[str]) -> dict[str, str]:
    """Start the missing services with testcontainers (kept for the whole run)."""
    from testcontainers.postgres import PostgresContainer
    from testcontainers.rabbitmq import RabbitMqContainer
    from testcontainers.redis import RedisContainer

    urls: dict[str, str] = {}
    if "TEST_DATABASE_URL" in names:
        postgres = PostgresContainer("postgres:16-alpine", driver=None).start()
        urls["TEST_DATABASE_URL"] = postgres.get_connection_url()
    if "TEST_REDIS_URL" in names:
        redis = RedisContainer("redis:7-alpine").start()
        host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
        urls["TEST_REDIS_URL"] = f"redis://{host}:{port}"
    if "TEST_AMQP_URL" in names:
        rabbit = RabbitMqContainer("rabbitmq:3-alpine").start()
        host, port = rabbit.get_container_host_ip(), rabbit.get_exposed_port(5672)
        urls["TEST_AMQP_URL"] = f"amqp://guest:guest@{host}:{port}//"
    return urls


def resolve(required: tuple[str, ...]) -> ServiceUrls:
    urls = {name: os.environ.get(name) or default for name, default in DEFAULTS.items()}
    missing = [name for name in required if not reachable(urls[name])]
    if missing and _docker_available():
        urls.update(_from_containers(missing))
        missing = []
    if missing:
        listing = ", ".join(f"{name}={urls[name]}" for name in missing)
        raise ServicesUnavailableError(f"cannot reach {listing}. {HOW_TO_PROVIDE}")
    for name, url in urls.items():
        os.environ[name] = url  # xdist workers and subprocesses inherit the resolved URLs
    return ServiceUrls(
        database=urls["TEST_DATABASE_URL"],
        redis=urls["TEST_REDIS_URL"],
        amqp=urls["TEST_AMQP_URL"],
    )
