"""Tier B: a few full combinations install, lint, migrate and pass their own test suites.

Each bake gets its own virtualenv (uv's shared cache makes that cheap), fresh PostgreSQL
databases, and a TEST_NAMESPACE of its own under this run's, which names everything its suite
creates in the shared services. The suites run one after another on one xdist worker: each
already spreads over every core.
"""

from __future__ import annotations

import uuid

import pytest

from tests.support import Bake, Services, asyncpg_url, child_environment, fresh_database, run

COMBINATIONS = [
    pytest.param({}, id="defaults"),
    pytest.param({"use_redis": "n"}, id="celery-on-rabbitmq"),
    pytest.param({"use_celery": "n", "include_example_domain": "n"}, id="minimal"),
]


@pytest.mark.slow
@pytest.mark.xdist_group("baked-suites")
@pytest.mark.parametrize("combination", COMBINATIONS)
def test_baked_project_passes_its_own_checks(
    bake: Bake, services: Services, combination: dict[str, str]
) -> None:
    project = bake(**combination)
    slug = project.name

    run(["uv", "sync"], cwd=project)
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
        run(["make", "test"], cwd=project, env=env, timeout=1200)
