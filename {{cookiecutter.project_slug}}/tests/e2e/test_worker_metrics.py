"""A real prefork Celery worker serves its task metrics, counted in its pool's child processes."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.factories import PASSWORD, unique_email
from tests.processes import (
    broker_url,
    celery_worker,
    delete_queue,
    free_port,
    fresh_database,
    running_server,
    server_env,
    started_process,
)
from tests.services import ServiceUrls

pytestmark = pytest.mark.slow

SUCCEEDED = re.compile(r'^celery_tasks_total\{[^}]*outcome="success"[^}]*\} (\S+)$', re.MULTILINE)


@pytest.fixture(scope="module")
async def migrated_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    async with fresh_database(service_urls.database, migrated=True) as url:
        yield url


def succeeded_tasks(metrics_url: str) -> float | None:
    try:
        text = httpx.get(metrics_url, timeout=5).text
    except httpx.TransportError:
        return None
    return sum(float(value) for value in SUCCEEDED.findall(text))


def test_worker_metrics_count_the_tasks_its_children_ran(
    migrated_url: str, service_urls: ServiceUrls, tmp_path: Path
) -> None:
    env = server_env(migrated_url, service_urls)
    metrics_port = free_port()
    (tmp_path / "worker-metrics").mkdir()
    worker_env = {
        **env,
        "WORKER_METRICS_PORT": str(metrics_port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "worker-metrics"),
    }
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    prefork = celery_worker("--pool=prefork", "--concurrency=2")
    with (
        started_process(prefork, env=worker_env, log_path=tmp_path / "worker.log") as worker,
        running_server(env, tmp_path / "server.log") as (base_url, _),
    ):
        # Each registration enqueues a welcome e-mail task after its commit.
        for _ in range(3):
            credentials = {"email": unique_email(), "password": PASSWORD}
            registered = httpx.post(f"{base_url}/api/v1/auth/register", json=credentials)
            assert registered.status_code == 201, registered.text

        deadline = time.monotonic() + 120
        while (succeeded_tasks(metrics_url) or 0) < 3:
            assert time.monotonic() < deadline, f"tasks not counted; worker log:\n{worker.log()}"
            time.sleep(0.5)
        worker.stop(timeout=30)
    delete_queue(broker_url(service_urls), env["CELERY_QUEUE"])
