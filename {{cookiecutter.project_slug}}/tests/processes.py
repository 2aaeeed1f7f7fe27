"""Run the service's own commands as separate processes, the way operators and containers do.

Each process gets an explicit environment: the runner's, minus every variable the service reads,
plus what the test sets. It runs in a scratch directory, so a developer's `.env` never leaks in.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from alembic.script import ScriptDirectory

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db import migrate
from tests.conftest import SECRET_KEY, asyncpg_dsn, create_database, drop_database, make_settings
from tests.services import ServiceUrls, namespace

SLUG = "{{ cookiecutter.project_slug }}"
CLI: tuple[str, ...] = (sys.executable, "-m", SLUG)
SETTINGS_VARIABLES = frozenset(name.upper() for name in Settings.model_fields)
# A command that has not finished after this is hung. The limit is far above an idle machine's
# few seconds: with every core busy, starting an interpreter alone can take tens of seconds.
HANG_SECONDS = 180.0


def service_env(**variables: str | None) -> dict[str, str]:
    """The runner's environment without the service's variables, then `variables` (None unsets)."""
    env = {
        name: value for name, value in os.environ.items() if name.upper() not in SETTINGS_VARIABLES
    }
    env.update(
        ENVIRONMENT="test",
        SECRET_KEY=SECRET_KEY,
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    for name, value in variables.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


async def run_command(
    *args: str,
    env: dict[str, str],
    stdin: str | None = None,
    limit_seconds: float = HANG_SECONDS,
) -> Finished:
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    try:
        async with asyncio.timeout(limit_seconds):
            stdout, stderr = await process.communicate(
                stdin.encode() if stdin is not None else None
            )
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Finished(
        process.returncode, stdout.decode(), stderr.decode(), time.monotonic() - started
    )


async def run_cli(
    *args: str, env: dict[str, str], stdin: str | None = None, limit_seconds: float = HANG_SECONDS
) -> Finished:
    """`python -m <slug> ARGS` with the test's interpreter (so the project's virtualenv)."""
    return await run_command(*CLI, *args, env=env, stdin=stdin, limit_seconds=limit_seconds)


def database_name() -> str:
    return f"{SLUG}_{namespace()}_{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def fresh_database(admin_url: str, *, migrated: bool = False) -> AsyncIterator[str]:
    """An empty database (or one at head) of its own, dropped afterwards."""
    name = database_name()
    url = await create_database(admin_url, name)
    try:
        if migrated:
            await migrate.upgrade(make_settings(database_url=url))
        yield url
    finally:
        await drop_database(admin_url, name)


async def database_version(url: str) -> str | None:
    """The revision recorded in `alembic_version`, or None when the table is absent or empty."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        if await connection.fetchval("SELECT to_regclass('public.alembic_version')") is None:
            return None
        version: str | None = await connection.fetchval("SELECT version_num FROM alembic_version")
        return version
    finally:
        await connection.close()


def revisions() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.alembic_config())


def head_revision() -> str:
    heads = revisions().get_heads()
    assert len(heads) == 1, f"expected one head, found {heads}"
    return heads[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait; returns the exit status (negative when ended by a signal)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@contextmanager
def started_process(
    args: Sequence[str], *, env: dict[str, str], log_path: Path
) -> Iterator[RunningProcess]:
    """A long-running process whose output goes to `log_path`; killed if the test leaves it."""
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            list(args),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=tempfile.gettempdir(),
        )
    running = RunningProcess(process, log_path)
    try:
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@contextmanager
def running_server(env: dict[str, str], log_path: Path) -> Iterator[tuple[str, RunningProcess]]:
    """`<slug> serve` on a free port, yielded once /health/live answers."""
    port = free_port()
    with started_process(
        [*CLI, "serve", "--port", str(port)], env=env, log_path=log_path
    ) as server:
        base_url = f"http://127.0.0.1:{port}"
        # Far above an idle machine's two seconds: start-up on a loaded runner is slow, not hung.
        deadline = time.monotonic() + 120
        while True:
            exit_code = server.process.poll()
            assert exit_code is None, f"server exited with {exit_code}:\n{server.log()}"
            try:
                if httpx.get(f"{base_url}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"server did not come up:\n{server.log()}"
            time.sleep(0.2)
        yield base_url, server


def server_env(database_url: str, service_urls: ServiceUrls) -> dict[str, str]:
    """What `serve` (and the worker) get in the end-to-end tests: every backing service real."""
    return service_env(
        DATABASE_URL=database_url,
        # Keys of this server's own: failed logins or limits of other tests never reach it.
        REDIS_KEY_PREFIX=f"{SLUG}-{namespace()}-{uuid.uuid4().hex[:8]}:",
        # Tests poll while they wait for a worker; the limits have tests of their own.
        RATE_LIMIT_DEFAULT="1000000/minute",
{%- if cookiecutter.use_redis == 'y' %}
        REDIS_URL=service_urls.redis,
{%- endif %}
{%- if cookiecutter.use_celery == 'y' %}
        CELERY_BROKER_URL=broker_url(service_urls),
        # A queue of its own: other runs sharing the broker never take this test's tasks.
        CELERY_QUEUE=f"{SLUG}-{namespace()}-{uuid.uuid4().hex[:8]}",
{%- endif %}
    )
{%- if cookiecutter.use_celery == 'y' %}


def celery_worker(*options: str) -> list[str]:
    """`celery worker` with a node name of its own. Two workers on one host with the default
    name both claim RabbitMQ's exclusive `celery@<host>.celery.pidbox` queue, and the second one
    dies (RESOURCE_LOCKED): a worker of another test, or one still shutting down."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        f"{SLUG}.worker",
        "worker",
        f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        "--loglevel=INFO",
        *options,
    ]


def broker_url(service_urls: ServiceUrls) -> str:
    """The end-to-end tests' Celery broker: kept apart by its queue name, not a database number."""
{%- if cookiecutter.use_redis == 'y' %}
    return service_urls.redis
{%- else %}
    return service_urls.amqp
{%- endif %}


def delete_queue(url: str, queue: str) -> None:
    """Remove a test's queue, its binding and exchange, and any task left in it."""
    from kombu import Connection, Exchange, Queue

    with Connection(url, connect_timeout=5) as connection:
        channel = connection.default_channel
        # Celery's default exchange is named after the queue. Declaring first tells this channel
        # the binding, so deleting removes it too (on Redis a binding is a key of its own).
        exchange = Exchange(queue, type="direct").bind(channel)
        bound = Queue(queue, exchange, routing_key=queue).bind(channel)
        bound.declare()
        bound.delete()
        exchange.delete()
{%- endif %}
