"""Prometheus multiprocess mode: with several worker processes, /metrics adds them all up."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from {{ cookiecutter.project_slug }}.core.config import Settings
from tests.processes import CLI, free_port, server_env, started_process
from tests.services import ServiceUrls

pytestmark = pytest.mark.slow

REQUESTS = 40
# What an earlier run of the server left behind: serve must not add it to this run's counts.
STALE_REQUESTS = 100_000
STALE_COUNTER = f"""
from prometheus_client import Counter
Counter("http_requests", "stale", ["handler", "method", "status"]).labels(
    "/health/live", "GET", "2xx"
).inc({STALE_REQUESTS})
"""
LIVE_COUNTER = re.compile(r'^http_requests_total\{handler="/health/live",[^}]*\} (\S+)$', re.M)


def wait_until_both_workers_serve(base_url: str, server_log: Path, workers: int) -> None:
    """Until every worker has started (each logs it) and the port answers."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        started = server_log.read_text(errors="replace").count("Application startup complete")
        try:
            live = httpx.get(f"{base_url}/health/live", timeout=1).status_code == 200
        except httpx.TransportError:
            live = False
        if live and started >= workers:
            return
        time.sleep(0.2)
    raise AssertionError(f"the workers did not come up:\n{server_log.read_text()}")


def test_counters_add_up_across_two_workers(
    settings: Settings, service_urls: ServiceUrls, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = server_env(settings.database_url, service_urls)
    env.pop("CELERY_BROKER_URL", None)
    env.pop("CELERY_QUEUE", None)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    subprocess.run([sys.executable, "-c", STALE_COUNTER], env=env, check=True)
    assert list(metrics_dir.glob("counter_*.db"))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"

    with started_process(
        [*CLI, "serve", "--port", str(port), "--workers", "2"], env=env, log_path=log
    ) as server:
        # One connection per request, from several threads at once, so both workers take some.
        def hit(_: int) -> int:
            with httpx.Client(base_url=base_url, timeout=10) as client:
                return client.get("/health/live").status_code

        wait_until_both_workers_serve(base_url, log, workers=2)
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(hit, range(REQUESTS)))
        scrapes = [httpx.get(f"{base_url}/metrics", timeout=10).text for _ in range(4)]
        server.stop()

    assert statuses == [200] * REQUESTS
    # Each process writes its own files; two (or more) writers means both workers counted.
    writers = {path.stem.rpartition("_")[2] for path in metrics_dir.glob("counter_*.db")}
    assert len(writers) >= 2, sorted(metrics_dir.iterdir())
    # Whichever worker answers a scrape, it reports every worker's requests: the test's, plus
    # the start-up probes that were answered (at least one).
    totals = [sum(float(value) for value in LIVE_COUNTER.findall(text)) for text in scrapes]
    assert len(set(totals)) == 1, totals
    assert REQUESTS + 1 <= totals[0] < STALE_REQUESTS, scrapes[0]
