"""The Celery app the factory builds: eager without a broker and quiet about it, and task
metrics from Celery's own signals, so every task is counted without opting in."""

from __future__ import annotations

import logging
import uuid

import pytest
import structlog
from prometheus_client import REGISTRY

from {{ cookiecutter.project_slug }}.tasks.app import (
    HEARTBEAT,
    PURGE_EXPIRED,
    RELAY_OUTBOX,
    RETRY_TRANSIENT,
    TRANSIENT_ERRORS,
    create_celery_app,
)
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


def test_the_app_loses_nothing_and_retries_only_transient_errors() -> None:
    settings = make_settings(
        celery_broker_url="redis://127.0.0.1:1/0",
        celery_task_soft_time_limit_seconds=50,
        celery_task_time_limit_seconds=60,
        celery_visibility_timeout_seconds=120,
        celery_result_expires_seconds=600,
        outbox_relay_interval_seconds=3,
    )

    conf = create_celery_app(settings).conf

    assert (conf.task_serializer, conf.result_serializer, conf.accept_content) == (
        "json",
        "json",
        ["json"],
    )
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost) == (True, True)
    assert conf.worker_prefetch_multiplier == 1
    assert (conf.task_soft_time_limit, conf.task_time_limit) == (50, 60)
    assert conf.broker_transport_options["visibility_timeout"] == 120
    assert conf.result_expires.total_seconds() == 600
    schedule = {entry["task"]: entry for entry in conf.beat_schedule.values()}
    assert schedule[RELAY_OUTBOX]["schedule"].total_seconds() == 3
    assert PURGE_EXPIRED in schedule
    assert RETRY_TRANSIENT["retry_backoff"] is True
    assert RETRY_TRANSIENT["retry_jitter"] is True
    assert RuntimeError not in TRANSIENT_ERRORS
