"""Tier B: a few full combinations install, lint, migrate and pass their own test suites.

Each bake gets its own virtualenv (uv's shared cache makes that cheap), fresh PostgreSQL
databases, and a TEST_NAMESPACE of its own under this run's, which names everything its suite
creates in the shared services. The suites run one after another: each already spreads over
every core, and its timing-sensitive tests (migration locks, processes) are written for a busy
machine, not for two suites competing for it.

The defaults bake (every feature on) runs its whole suite. The other combinations run every test
but those marked `slow` that read the same in every bake (the migration lock, the CLI, the
server journey, fuzzing, rate-limit load): they change no code path an option touches, and
running them three times would triple the cost of CI for nothing. Tests an option does change
run in each combination: Celery on RabbitMQ runs its real-worker test explicitly, and the bake
with tracing on runs its tracing tests (a real server and worker exporting to a receiver among
them). The pytest arguments are shown in each test's id.

The smallest project (no example domain, no Celery) first gets two resources from `scaffold
resource`, so a scaffolded resource is held to what the example is held to in the defaults: the
lint, the migrations (single head, round trip, models matching them) and the resources' own
tests all run in that bake's checks and suite. Refusals are `test_scaffold.py`'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from tests.support import Bake, Services, asyncpg_url, child_environment, fresh_database, run

OPTION_INDEPENDENT = '-m "not slow"'
# `scaffold resource NAME --fields FIELDS`: every field type, optional fields, and a resource
# sorted by its timestamps only (its other fields are unbounded, unordered or optional).
RESOURCES = (
    ("product", "name:str, price:decimal, due:date?"),
    ("note", "body:text, pinned:bool, starts:datetime?, ref:uuid?, rank:int?"),
)
COMBINATIONS = [
    pytest.param({}, [""], (), id="defaults"),
    pytest.param(
        {"use_redis": "n"},
        [OPTION_INDEPENDENT, "tests/e2e/test_worker.py"],
        (),
        id="celery-on-rabbitmq",
    ),
    pytest.param(
        {"use_celery": "n", "include_example_domain": "n"},
        # The fuzzing pass too: its routes are the scaffolded resources', which no other bake has.
        [OPTION_INDEPENDENT, "tests/e2e/test_fuzz.py"],
        RESOURCES,
        id="minimal",
    ),
    # Tracing is off by default, so no other combination has its tests.
    pytest.param({"use_opentelemetry": "y"}, ["-k telemetry"], (), id="tracing"),
]


def scaffold(project: Path, resources: tuple[tuple[str, str], ...]) -> None:
    """Scaffold `resources` in order; each migration is numbered after the ones before it."""
    versions = f"src/{project.name}/db/migrations/versions"
    # The highest number shipped (numbers may skip where a feature's migration was pruned).
    shipped = max(int(path.name[:4]) for path in (project / versions).glob("[0-9]*.py"))
    for number, (name, fields) in enumerate(resources, start=shipped + 1):
        command = ["uv", "run", "--no-sync", project.name, "scaffold", "resource", name]
        output = run([*command, "--fields", fields], cwd=project)
        assert f"created {versions}/{number:04d}_{name}" in output, output


@pytest.fixture
def one_suite_at_a_time(session_dir: Path) -> Iterator[FileLock]:
    """Held while a baked suite runs, by whichever xdist worker runs it.

    A file lock rather than `xdist_group`: pytest-xdist 3.8 groups by rewriting `item._nodeid`,
    which pytest 9 no longer reads, so grouped tests were spread over workers again.
    """
    with FileLock(str(session_dir / "baked-suites.lock")) as lock:
        yield lock


@pytest.mark.slow
@pytest.mark.parametrize(("combination", "test_runs", "resources"), COMBINATIONS)
@pytest.mark.usefixtures("one_suite_at_a_time")
def test_baked_project_passes_its_own_checks(
    bake: Bake,
    services: Services,
    combination: dict[str, str],
    test_runs: list[str],
    resources: tuple[tuple[str, str], ...],
) -> None:
    project = bake(**combination)
    slug = project.name

    run(["uv", "sync"], cwd=project)
    scaffold(project, resources)
    run(["make", "lint"], cwd=project)

    with fresh_database(services) as database_url:
        env = child_environment(DATABASE_URL=asyncpg_url(database_url))
        run(["uv", "run", "--no-sync", slug, "db", "upgrade"], cwd=project, env=env)
        # Models and migrations agree: autogenerate finds nothing to add.
        run(["uv", "run", "--no-sync", "alembic", "check"], cwd=project, env=env)

    with fresh_database(services) as test_database_url:
        env = child_environment(
            TEST_DATABASE_URL=test_database_url,
            TEST_REDIS_URL=services.redis_url,
            TEST_AMQP_URL=services.amqp_url,
            TEST_NAMESPACE=f"{services.namespace}_{uuid.uuid4().hex[:4]}",
        )
        for arguments in test_runs:
            run(["make", "test", f"ARGS={arguments}"], cwd=project, env=env, timeout=1200)
