"""`scaffold resource` in a baked project: two resources, then lint, migrations, tests, routes.

Baked with the defaults and with the smallest project (no example domain, no Celery), since a
scaffolded resource must be as complete there as the example is in the defaults. The baked
project's own suite runs the new resources' tests, the migration checks (single head, downgrade
and upgrade again, models match migrations), the OpenAPI checks and the scaffold's unit tests; a
real server then answers every route of one new resource as the README documents it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

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
    wait_for_http,
)

RESOURCES = (
    ("product", "name:str, price:decimal, due:date?"),
    ("note", "body:text, pinned:bool"),
)
REFUSALS = (
    ("order", "title:str", "SQL reserved word"),
    ("widget", "size:huge", "unknown type 'huge'"),
    ("users", "title:str", "existing module"),
)
# The generated project's password policy accepts it (tests/factories.py uses the same).
PASSWORD = "correct-horse-battery-9"  # noqa: S105 - a throwaway test account


def source_files(project: Path) -> dict[str, bytes]:
    return {
        path.relative_to(project).as_posix(): path.read_bytes()
        for folder in ("src", "tests")
        for path in sorted((project / folder).rglob("*.py"))
    }


def scaffold(project: Path) -> list[str]:
    slug = project.name
    outputs = []
    for name, fields in RESOURCES:
        command = ["uv", "run", "--no-sync", slug, "scaffold", "resource", name]
        outputs.append(run([*command, "--fields", fields], cwd=project))
    return outputs


def exercise_products(base_url: str) -> None:
    """Every route of `products`, as documented: create, get, list, patch, delete, ownership."""
    with httpx.Client(base_url=base_url, timeout=30) as client:

        def sign_in() -> dict[str, str]:
            email = f"user-{uuid.uuid4().hex[:12]}@example.com"
            credentials = {"email": email, "password": PASSWORD}
            assert client.post("/api/v1/auth/register", json=credentials).status_code == 201
            tokens = client.post("/api/v1/auth/login", json=credentials).json()
            return {"Authorization": f"Bearer {tokens['access_token']}"}

        owner, stranger = sign_in(), sign_in()
        created = client.post(
            "/api/v1/products", json={"name": "Lamp", "price": "12.50"}, headers=owner
        )
        assert created.status_code == 201, created.text
        product = created.json()
        assert (product["name"], product["price"], product["due"]) == ("Lamp", "12.50", None)
        url = f"/api/v1/products/{product['id']}"

        assert client.get(url, headers=owner).json()["id"] == product["id"]
        assert client.get(url, headers=stranger).status_code == 404
        assert client.get("/api/v1/products", headers=owner).json()["total"] == 1
        assert client.get("/api/v1/products", headers=stranger).json()["total"] == 0

        patched = client.patch(url, json={"due": "2030-01-31"}, headers=owner)
        assert patched.status_code == 200, patched.text
        assert (patched.json()["due"], patched.json()["version"]) == ("2030-01-31", 2)

        refused = client.post("/api/v1/products", json={"name": "x"}, headers=owner)
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert client.post("/api/v1/products", json={"name": "x", "price": "1"}).status_code == 401

        assert client.delete(url, headers=stranger).status_code == 404
        assert client.delete(url, headers=owner).status_code == 204
        assert client.get(url, headers=owner).status_code == 404

        paths = client.get("/openapi.json").json()["paths"]
        assert {"/api/v1/products", "/api/v1/products/{product_id}", "/api/v1/notes"} <= set(paths)


@pytest.mark.slow
@pytest.mark.parametrize(
    "combination",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"use_celery": "n", "include_example_domain": "n"}, id="minimal"),
    ],
)
def test_scaffolded_resources_lint_migrate_and_pass_their_tests(
    bake: Bake, services: Services, tmp_path: Path, combination: dict[str, str]
) -> None:
    project = bake(**combination)
    slug = project.name
    run(["uv", "sync"], cwd=project)
    before = source_files(project)

    for name, fields, reason in REFUSALS:
        command = ["uv", "run", "--no-sync", slug, "scaffold", "resource", name]
        with pytest.raises(AssertionError, match=reason):
            run([*command, "--fields", fields], cwd=project)
    assert source_files(project) == before

    versions = f"src/{slug}/db/migrations/versions"
    shipped = len(list((project / versions).glob("[0-9]*.py")))

    outputs = scaffold(project)

    # Numbered after the shipped revisions, in the order they were scaffolded.
    assert f"created {versions}/{shipped + 1:04d}_products.py" in outputs[0]
    assert f"created {versions}/{shipped + 2:04d}_notes.py" in outputs[1]
    run(["make", "lint"], cwd=project)

    with fresh_database(services) as database_url:
        env = child_environment(DATABASE_URL=asyncpg_url(database_url))
        run(["uv", "run", "--no-sync", slug, "db", "upgrade"], cwd=project, env=env)
        # Models and migrations agree: autogenerate finds nothing to add.
        run(["uv", "run", "--no-sync", "alembic", "check"], cwd=project, env=env)

        port = free_port()
        server = start(
            ["uv", "run", "--no-sync", slug, "serve", "--port", str(port)],
            cwd=project,
            env=env,
            log=tmp_path / "server.log",
        )
        try:
            wait_for_http(
                f"http://127.0.0.1:{port}/health/live", process=server, log=tmp_path / "server.log"
            )
            exercise_products(f"http://127.0.0.1:{port}")
        finally:
            stop(server)

    suites = [
        "tests/integration/api/v1/test_products.py",
        "tests/integration/api/v1/test_notes.py",
        "tests/integration/services/test_product.py",
        "tests/integration/services/test_note.py",
        "tests/integration/repositories/test_product.py",
        "tests/integration/repositories/test_note.py",
        "tests/integration/db/test_migrations.py",
        "tests/integration/api/test_openapi.py",
        "tests/unit/scaffold",
    ]
    with fresh_database(services) as test_database_url:
        env = child_environment(
            TEST_DATABASE_URL=test_database_url,
            TEST_REDIS_URL=services.redis_url,
            TEST_AMQP_URL=services.amqp_url,
            TEST_NAMESPACE=f"{services.namespace}_{uuid.uuid4().hex[:4]}",
        )
        run(
            ["uv", "run", "--no-sync", "pytest", "-n", "2", "-p", "no:randomly", *suites],
            cwd=project,
            env=env,
            timeout=1200,
        )
