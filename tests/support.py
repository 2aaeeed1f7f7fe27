"""Helpers for the template's tests: subprocesses, ports, services and fresh databases."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
OUTPUT_TAIL_LINES = 80

# The `bake` fixture: bake(**extra_context) -> the baked project's folder.
Bake = Callable[..., Path]


@dataclass(frozen=True)
class Services:
    """Where the real PostgreSQL, Redis and RabbitMQ of this test session live."""

    database_url: str
    redis_url: str
    amqp_url: str

    @classmethod
    def from_environment(cls) -> Services:
        # The session start-up check (conftest.py) has filled these in or stopped the run.
        return cls(
            database_url=os.environ["TEST_DATABASE_URL"],
            redis_url=os.environ["TEST_REDIS_URL"],
            amqp_url=os.environ["TEST_AMQP_URL"],
        )

    def redis_database(self, index: int) -> str:
        """The Redis URL with database `index`, so that concurrent users never share keys."""
        parts = urlsplit(self.redis_url)
        return urlunsplit(parts._replace(path=f"/{index}"))


def child_environment(**overrides: str) -> dict[str, str]:
    """The environment for a baked project's commands, free of this test session's state.

    `uv run pytest` exports its virtualenv and pytest exports its worker ids; a baked project must
    use its own virtualenv and run its own pytest from a clean slate.
    """
    own_venv = os.environ.get("VIRTUAL_ENV")
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "VIRTUAL_ENV" and not key.startswith("PYTEST_")
    }
    if own_venv:
        own_bin = str(Path(own_venv) / "bin")
        env["PATH"] = os.pathsep.join(
            entry for entry in env.get("PATH", "").split(os.pathsep) if entry != own_bin
        )
    env.update(overrides)
    return env


def tail(text: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run(
    command: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> str:
    """Run `command` to completion; fail the test with the tail of its output unless it exits 0."""
    try:
        completed = subprocess.run(
            command,
            cwd=cwd,
            env=dict(env) if env is not None else child_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.output.decode() if isinstance(exc.output, bytes) else exc.output or ""
        raise AssertionError(
            f"`{' '.join(command)}` in {cwd} did not finish within {timeout:.0f}s:\n{tail(output)}"
        ) from None
    if completed.returncode != 0:
        raise AssertionError(
            f"`{' '.join(command)}` in {cwd} exited {completed.returncode}:\n"
            f"{tail(completed.stdout)}"
        )
    return completed.stdout


def start(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """Start a long-running process in its own process group, its output going to `log`."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], *, grace: float = 10) -> None:
    """Stop a process started by `start` and everything it spawned (uv, reloaders, workers)."""
    if process.poll() is not None:
        return
    # The process leads its own group (start_new_session), so this reaches its children too.
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_http(
    url: str, *, process: subprocess.Popen[bytes], log: Path, timeout: float = 120
) -> httpx.Response:
    """Poll `url` until it answers 200; fail early, with the log, if the process dies."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"the server exited {process.returncode} before {url} answered:\n"
                f"{tail(log.read_text(errors='replace'))}"
            )
        try:
            response = httpx.get(url, timeout=5)
        except httpx.TransportError as exc:
            last = repr(exc)
        else:
            if response.status_code == httpx.codes.OK:
                return response
            last = f"{response.status_code} {response.text[:200]}"
        time.sleep(0.5)
    raise AssertionError(
        f"{url} did not answer 200 within {timeout:.0f}s (last: {last}):\n"
        f"{tail(log.read_text(errors='replace'))}"
    )


def asyncpg_url(url: str) -> str:
    """The service's form of a PostgreSQL URL: SQLAlchemy with the asyncpg driver."""
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql+asyncpg"))


@contextmanager
def fresh_database(services: Services) -> Iterator[str]:
    """Create an empty PostgreSQL database for one bake; yield its `postgresql://` URL."""
    name = f"tpl_{uuid.uuid4().hex[:12]}"
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    with psycopg.connect(services.database_url, autocommit=True) as admin:
        admin.execute(statement)
    try:
        yield urlunsplit(urlsplit(services.database_url)._replace(path=f"/{name}"))
    finally:
        # FORCE ends the connections a failed test may have left behind (PostgreSQL 13+).
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        with psycopg.connect(services.database_url, autocommit=True) as admin:
            admin.execute(drop)
