"""Fixtures for baking the template, and the service rule of `make test`.

Services: PostgreSQL, Redis and RabbitMQ come from TEST_DATABASE_URL, TEST_REDIS_URL and
TEST_AMQP_URL, else from the local defaults; when those are unreachable and Docker is available,
testcontainers starts them; otherwise every test that needs them fails at once, saying how to
provide them. Only the tests that use the `services` fixture look for them: the others (`make
test-unit`, tier A) run without any service.

Names this run gives to what it creates in those services (databases, queues, the baked suites'
own names) start with TEST_NAMESPACE, set here once per run unless the caller chose one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cookiecutter.main import cookiecutter
from filelock import FileLock

from tests.support import (
    TEMPLATE_DIR,
    Bake,
    Services,
    child_environment,
    run,
    services_unavailable_message,
)


@dataclass(frozen=True)
class Service:
    variable: str
    default: str
    # For testcontainers: the image, its port, its environment, the log line that says it is
    # ready (and how many times it must appear), and the URL with {host} and {port} to fill in.
    image: str
    port: int
    container_env: dict[str, str]
    ready_log: str
    container_url: str
    ready_log_times: int = 1


SERVICES = (
    Service(
        variable="TEST_DATABASE_URL",
        default="postgresql://postgres@127.0.0.1:5432/test",
        image="postgres:16-alpine",
        port=5432,
        container_env={"POSTGRES_HOST_AUTH_METHOD": "trust", "POSTGRES_DB": "test"},
        ready_log="database system is ready to accept connections",
        # The first time is the temporary server that runs the init scripts.
        ready_log_times=2,
        container_url="postgresql://postgres@{host}:{port}/test",
    ),
    Service(
        variable="TEST_REDIS_URL",
        default="redis://127.0.0.1:6379",
        image="redis:7-alpine",
        port=6379,
        container_env={},
        ready_log="Ready to accept connections",
        container_url="redis://{host}:{port}",
    ),
    Service(
        variable="TEST_AMQP_URL",
        default="amqp://guest:guest@127.0.0.1:5672//",
        image="rabbitmq:3-alpine",
        port=5672,
        container_env={},
        ready_log="Server startup complete",
        container_url="amqp://guest:guest@{host}:{port}//",
    ),
)

DEFAULT_PORTS = {"postgresql": 5432, "redis": 6379, "amqp": 5672}


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORTS[parts.scheme])
    try:
        with socket.create_connection(address, timeout=2):
            return True
    except OSError:
        return False


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


def _start_container(config: pytest.Config, service: Service) -> str:
    # Imported on demand: most runs use services that are already up.
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    ready = LogMessageWaitStrategy(service.ready_log, times=service.ready_log_times)
    container = (
        DockerContainer(service.image)
        .with_exposed_ports(service.port)
        .with_envs(**service.container_env)
        .waiting_for(ready)
    )
    container.start()
    config.add_cleanup(container.stop)
    return service.container_url.format(
        host=container.get_container_host_ip(), port=container.get_exposed_port(service.port)
    )


def pytest_configure(config: pytest.Config) -> None:
    # The controller chooses the run's namespace; xdist workers inherit it with the environment.
    if not hasattr(config, "workerinput"):
        os.environ.setdefault("TEST_NAMESPACE", f"tpl_{uuid.uuid4().hex[:6]}")


def resolve_services(config: pytest.Config) -> None:
    """Fill TEST_*_URL in: the variable, the local default, or a container; else fail at once."""
    missing: list[Service] = []
    for service in SERVICES:
        url = os.environ.setdefault(service.variable, service.default)
        if not _reachable(url):
            missing.append(service)
    if not missing:
        return
    if not _docker_available():
        unreachable = {s.variable: os.environ[s.variable] for s in missing}
        pytest.fail(services_unavailable_message(unreachable), pytrace=False)
    for service in missing:
        os.environ[service.variable] = _start_container(config, service)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In CI a skipped test fails the run: nothing may be left unverified silently."""
    if not os.environ.get("CI") or hasattr(session.config, "workerinput"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = len(reporter.stats.get("skipped", []))
    if skipped and session.exitstatus == pytest.ExitCode.OK:
        reporter.write_sep("=", f"{skipped} skipped; CI=true requires every test to run", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def services(pytestconfig: pytest.Config) -> Services:
    """PostgreSQL, Redis and RabbitMQ for this xdist worker; looked for only when a test asks."""
    resolve_services(pytestconfig)
    return Services.from_environment()


@pytest.fixture(scope="session")
def cookiecutter_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cookiecutter config that keeps replay files out of the user's home directory."""
    home = tmp_path_factory.mktemp("cookiecutter")
    config = home / "config.yaml"
    config.write_text(f"cookiecutters_dir: {home / 'templates'}\nreplay_dir: {home / 'replay'}\n")
    return config


@pytest.fixture
def bake(tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path) -> Bake:
    """Bake the template with `extra_context` over the defaults; return the project folder."""

    def _bake(**extra_context: Any) -> Path:
        output_dir = tmp_path_factory.mktemp("bake")
        project = cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            extra_context=extra_context,
            output_dir=str(output_dir),
            config_file=str(cookiecutter_config),
        )
        return Path(project)

    return _bake


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A folder shared by every xdist worker of this run (and only this run)."""
    basetemp = tmp_path_factory.getbasetemp()
    return basetemp if worker_id == "master" else basetemp.parent


@pytest.fixture(scope="session")
def lint_venv(session_dir: Path, cookiecutter_config: Path) -> Path:
    """One virtualenv with the generated project's dependencies and dev tools, shared by all bakes.

    The defaults with tracing on enable every feature, so its dependencies are the union over all
    options.
    The project itself is not installed: mypy reads each bake's own `src/` through `mypy_path`.
    """
    venv = session_dir / "lint-venv"
    with FileLock(str(session_dir / "lint-venv.lock")):
        if not (venv / "bin" / "mypy").exists():
            project = cookiecutter(
                str(TEMPLATE_DIR),
                no_input=True,
                # Every option that adds dependencies on; tracing is off by default.
                extra_context={"use_opentelemetry": "y"},
                output_dir=str(session_dir / "lint-venv-project"),
                overwrite_if_exists=True,
                config_file=str(cookiecutter_config),
            )
            run(
                ["uv", "sync", "--no-install-project"],
                cwd=Path(project),
                env=child_environment(UV_PROJECT_ENVIRONMENT=str(venv)),
            )
    return venv


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mypy cache per xdist worker: third-party modules are analysed once, not once per bake."""
    return tmp_path_factory.mktemp("mypy-cache")
