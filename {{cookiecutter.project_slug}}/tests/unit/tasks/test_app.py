"""The Celery app the factory builds: eager without a broker and quiet about it, and task
metrics from Celery's own signals, so every task is counted without opting in."""

from __future__ import annotations

import logging
import uuid

import pytest
import structlog
from prometheus_client import REGISTRY

from {{ cookiecutter.project_slug }}.tasks.app import HEARTBEAT, create_celery_app
from tests.conftest import make_settings


def test_without_a_broker_tasks_run_eagerly_and_kombu_stays_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_celery_app(make_settings(redis_url=None, celery_broker_url=None))

    with caplog.at_level(logging.WARNING):
        result = app.tasks[HEARTBEAT].delay()

    assert app.conf.task_always_eager
    assert result.get() == "ok"
    assert [record.getMessage() for record in caplog.records] == []


def test_an_eager_task_keeps_the_request_id_of_the_request_that_ran_it() -> None:
    app = create_celery_app(make_settings(redis_url=None, celery_broker_url=None))
    seen: list[object] = []

    @app.task(name="test.capture_request_id")
    def capture() -> None:
        seen.append(structlog.contextvars.get_contextvars().get("request_id"))

    with structlog.contextvars.bound_contextvars(request_id="req-1234567890"):
        capture.delay()

    assert seen == ["req-1234567890"]


def test_the_factory_builds_a_new_app_each_time_and_none_is_current() -> None:
    settings = make_settings(redis_url=None, celery_broker_url=None)

    first, second = create_celery_app(settings), create_celery_app(settings)

    assert first is not second
    assert HEARTBEAT in first.tasks
    assert HEARTBEAT in second.tasks


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
