"""Prometheus plumbing shared by the processes that serve metrics: the API server and the worker.

With several processes (uvicorn workers, Celery's prefork children) each one counts in files
under PROMETHEUS_MULTIPROC_DIR and whoever serves /metrics adds them up. The directory belongs to
one server or worker and must exist before it starts (prometheus_client writes there as soon as
a metric is created): files left there by an earlier run would be added to this run's counters,
so it is emptied at start-up, before any child process exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

from {{ cookiecutter.project_slug }}.core.logging import get_logger

log = get_logger(__name__)

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_DIR_VARIABLE)
    return Path(value) if value else None


def clear_multiprocess_dir() -> int:
    """Delete the metric files other processes left; returns how many there were.

    Called by the parent process before it starts its children; its own files (metrics it
    created while importing the service) stay, as it keeps writing to them.
    """
    directory = multiprocess_dir()
    if directory is None:
        return 0
    own = f"_{os.getpid()}.db"
    stale = [path for path in directory.glob("*.db") if not path.name.endswith(own)]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info("cleared metrics of an earlier run", directory=str(directory), files=len(stale))
    return len(stale)


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - scraped in-cluster
    """Serve /metrics on `port` from a background thread (the worker has no HTTP server)."""
    registry = REGISTRY
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        log.warning(
            "serving metrics without PROMETHEUS_MULTIPROC_DIR: tasks run in pool child "
            "processes are not counted here (set it, or use --pool=solo or threads)"
        )
    start_http_server(port, addr=host, registry=registry)
    log.info("serving metrics", port=port)
