"""Fuzz every operation of the API with schemathesis, against the real server.

Starts `serve` on a fresh migrated database with real PostgreSQL and Redis, signs in as an admin
(so admin-only operations are reached too), and runs `st run` over the app's OpenAPI document
with the checks that must never fail: no 5xx, and every response matches its documented schema.
`make fuzz` runs it long; the test suite runs a short, bounded pass (tests/e2e/test_fuzz.py).

    python -m tests.fuzz [--max-examples N] [--max-time SECONDS] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.factories import PASSWORD, unique_email
from tests.processes import fresh_database, run_cli, running_server, server_env
from tests.services import ServiceUrls, resolve

CHECKS = "not_a_server_error,response_schema_conformance"
SCHEMATHESIS = (sys.executable, "-m", "schemathesis.cli")


@dataclass(frozen=True)
class FuzzResult:
    returncode: int
    output: str
    operations: int
    cases: int
    failures: int


@contextmanager
def admin_server(service_urls: ServiceUrls, log_dir: Path) -> Iterator[tuple[str, str]]:
    """The server on a migrated database of its own, and an admin's bearer token."""
    with _migrated_database(service_urls) as database_url:
        env = server_env(database_url, service_urls)
        # The fuzzer is one client sending thousands of requests; limits are tested elsewhere.
        env.update(RATE_LIMIT_DEFAULT="1000000/minute", RATE_LIMIT_AUTH="1000000/minute")
        # Tasks run eagerly in the server: nothing is left behind in a shared broker.
        env.pop("CELERY_BROKER_URL", None)
        env.pop("CELERY_QUEUE", None)
        email = unique_email()
        created = asyncio.run(
            run_cli(
                "users",
                "create-superuser",
                "--email",
                email,
                "--password-stdin",
                env=env,
                stdin=PASSWORD,
            )
        )
        assert created.returncode == 0, created.stderr
        with running_server(env, log_dir / "server.log") as (base_url, _):
            login = httpx.post(
                f"{base_url}/api/v1/auth/login",
                json={"email": email, "password": PASSWORD},
                timeout=30,
            )
            assert login.status_code == 200, login.text
            yield base_url, login.json()["access_token"]


@contextmanager
def _migrated_database(service_urls: ServiceUrls) -> Iterator[str]:
    # fresh_database is async; the fuzzer itself is a blocking subprocess, so drive it here.
    manager = fresh_database(service_urls.database, migrated=True)
    loop = asyncio.new_event_loop()
    try:
        url = loop.run_until_complete(manager.__aenter__())
        try:
            yield url
        finally:
            loop.run_until_complete(manager.__aexit__(None, None, None))
    finally:
        loop.close()


def fuzz(
    base_url: str,
    token: str,
    *,
    max_examples: int,
    max_time: int | None = None,
    phases: str = "examples,coverage,fuzzing,stateful",
    seed: int | None = None,
    report_dir: Path,
) -> FuzzResult:
    """`st run` over every operation; returns its exit code, output and figures."""
    report = report_dir / "schemathesis.json"
    args = [
        *SCHEMATHESIS,
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(max_examples),
        "--phases",
        phases,
        "--workers",
        "1",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    if max_time is not None:
        args += ["--max-time", str(max_time)]
    if seed is not None:
        args += ["--seed", str(seed)]
    finished = subprocess.run(
        args, capture_output=True, text=True, check=False, cwd=tempfile.gettempdir()
    )
    output = finished.stdout + finished.stderr
    operations, cases, failures = _figures(report)
    return FuzzResult(finished.returncode, output, operations, cases, failures)


def _figures(report: Path) -> tuple[int, int, int]:
    if not report.exists():
        return 0, 0, 0
    data = json.loads(report.read_text())
    cases = data["test_cases"]
    return int(data["operations"]["tested"]), int(cases["generated"]), int(cases["unique_failures"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--max-time", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    arguments = parser.parse_args()
    service_urls = resolve(("TEST_DATABASE_URL", "TEST_REDIS_URL"))
    with tempfile.TemporaryDirectory() as scratch:
        with admin_server(service_urls, Path(scratch)) as (base_url, token):
            result = fuzz(
                base_url,
                token,
                max_examples=arguments.max_examples,
                max_time=arguments.max_time,
                seed=arguments.seed,
                report_dir=Path(scratch),
            )
        print(result.output)  # noqa: T201 - a command-line report
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
