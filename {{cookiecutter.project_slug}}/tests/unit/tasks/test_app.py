"""Task metrics come from Celery's own signals, so every task is counted without opting in."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY

from {{ cookiecutter.project_slug }}.tasks.app import HEARTBEAT, create_celery_app
from tests.conftest import make_settings


def runs(task: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("celery_tasks_total", {"task": task, "outcome": outcome})
    return value or 0.0


def timed(task: str) -> float:
    value = REGISTRY.get_sample_value("celery_task_duration_seconds_count", {"task": task})
    return value or 0.0


def test_successes_and_failures_are_counted_and_timed() -> None:
    # No broker: tasks run eagerly, through the same tracer and signals a worker uses.
    app = create_celery_app(make_settings())
    failing = f"tests.failing_{uuid.uuid4().hex[:8]}"

    @app.task(name=failing)
    def fail() -> None:
        raise RuntimeError("boom")

    before = runs(HEARTBEAT, "success"), timed(HEARTBEAT)

    assert app.tasks[HEARTBEAT].apply().get() == "ok"
    # As on a worker, the failure is recorded on the result instead of raised at the caller.
    failed = fail.apply(throw=False)
    assert isinstance(failed.result, RuntimeError)

    assert (runs(HEARTBEAT, "success"), timed(HEARTBEAT)) == (before[0] + 1, before[1] + 1)
    assert runs(failing, "failure") == 1
    assert timed(failing) == 1
