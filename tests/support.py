"""Helpers for the template's tests: subprocesses, ports, services and fresh databases."""

from __future__ import annotations

import os
import re
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
# After the failing tests and the first failure, a shorter tail is enough context.
SUMMARY_TAIL_LINES = 30

# The one instruction for missing services; the README gives the same command.
START_SERVICES = "docker compose up -d postgres redis rabbitmq"

# The `bake` fixture: bake(**extra_context) -> the baked project's folder.
Bake = Callable[..., Path]


@dataclass(frozen=True)
class Services:
    """Where the real PostgreSQL, Redis and RabbitMQ of this test session live."""

    database_url: str
    redis_url: str
    amqp_url: str
    # Starts every name this run creates in the services (TEST_NAMESPACE, see conftest.py).
    namespace: str

    @classmethod
    def from_environment(cls) -> Services:
        # The `services` fixture (conftest.py) has filled these in or failed the test.
        return cls(
            database_url=os.environ["TEST_DATABASE_URL"],
            redis_url=os.environ["TEST_REDIS_URL"],
            amqp_url=os.environ["TEST_AMQP_URL"],
            namespace=os.environ["TEST_NAMESPACE"],
        )


def services_unavailable_message(unreachable: Mapping[str, str]) -> str:
    listing = ", ".join(f"{variable}={url}" for variable, url in unreachable.items())
    return (
        f"services unreachable and Docker unavailable: {listing}. Point TEST_DATABASE_URL, "
        "TEST_REDIS_URL and TEST_AMQP_URL at running PostgreSQL, Redis and RabbitMQ, or run "
        f"`{START_SERVICES}` in the template folder."
    )


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


def failure_summary(output: str) -> str:
    """A failed pytest run in brief: the failing tests' names, then the first failure.

    Read from pytest's short summary (`FAILED …` / `ERROR …` lines, from `-ra`) and its first
    `E   ` block with the source line before it and the location after it. Empty when the output
    has neither (not a pytest run).
    """
    lines = output.splitlines()
    failing = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    first: list[str] = []
    start = next((i for i, line in enumerate(lines) if line.startswith("E   ")), None)
    if start is not None:
        end = start
        while end < len(lines) and (lines[end] == "E" or lines[end].startswith("E ")):
            end += 1
        # The location (`tests/x.py:12: AssertionError`) follows after a blank line.
        while end < len(lines) and not lines[end].strip():
            end += 1
        begin = start - 1 if start > 0 and lines[start - 1].startswith(">") else start
        first = lines[begin : end + 1]
    if not failing and not first:
        return ""
    parts = []
    if failing:
        parts.append("failing tests:\n" + "\n".join(failing))
    if first:
        parts.append("first failure:\n" + "\n".join(first))
    return "\n\n".join(parts)


def failure_report(output: str) -> str:
    summary = failure_summary(output)
    if not summary:
        return tail(output)
    return f"{summary}\n\nlast {SUMMARY_TAIL_LINES} lines:\n{tail(output, SUMMARY_TAIL_LINES)}"


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
            f"{failure_report(completed.stdout)}"
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
    name = f"{services.namespace}_{uuid.uuid4().hex[:12]}"
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


# What a README names that must exist in the project beside it. A path is an inline code span, or
# a word in a code block, that starts with one of these folders; placeholders (`<resource>`),
# globs and elisions are not checked. In a code block, a line such as `src/pkg/` opens a tree whose
# indented entries (`  api/   routers`) are checked below it.
README_TOP_FOLDERS = ("src/", "tests/", "deploy/", ".github/")
NOT_A_PATH = re.compile(r"[<>*{}…]|\.\.\.")
MAKE_TARGET = re.compile(r"\bmake ([a-z][\w-]*)")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
MAKEFILE_TARGET = re.compile(r"^([a-z][\w-]*):", re.MULTILINE)


@dataclass(frozen=True)
class ReadmeReferences:
    make_targets: frozenset[str]
    paths: frozenset[str]


def readme_references(readme: str) -> ReadmeReferences:
    """The `make` targets and the project paths a README names in code (see README_TOP_FOLDERS)."""
    targets: set[str] = set()
    paths: set[str] = set()
    in_block = False
    tree: str | None = None
    for line in readme.splitlines():
        if line.startswith("```"):
            in_block, tree = not in_block, None
            continue
        for span in [line] if in_block else INLINE_CODE.findall(line):
            targets.update(MAKE_TARGET.findall(span))
            paths.update(
                word
                for word in span.split()
                if word.startswith(README_TOP_FOLDERS) and not NOT_A_PATH.search(word)
            )
        if not in_block or not line.strip():
            continue
        first = line.split()[0]
        if not line[0].isspace():
            opens_tree = first.endswith("/") and first.startswith(README_TOP_FOLDERS)
            tree = first if opens_tree and not NOT_A_PATH.search(first) else None
        elif tree is not None and (first.endswith("/") or "." in first):
            paths.add(tree + first)
    return ReadmeReferences(frozenset(targets), frozenset(paths))


def readme_problems(project: Path) -> list[str]:
    """Every `make` target and path the project's README names but the project lacks."""
    references = readme_references((project / "README.md").read_text(encoding="utf-8"))
    defined = set(MAKEFILE_TARGET.findall((project / "Makefile").read_text(encoding="utf-8")))
    problems = [f"make {target}" for target in sorted(references.make_targets - defined)]
    problems += [path for path in sorted(references.paths) if not (project / path).exists()]
    return problems
