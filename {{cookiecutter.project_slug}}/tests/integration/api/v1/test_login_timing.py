"""Unknown e-mail and wrong password take the same time, measured rather than asserted per
request: 50 logins of each kind, interleaved so both see the same machine load, compared by
their medians. Both paths verify one argon2 hash, so the gap is small; the bound is generous
because a busy machine adds noise to both alike."""

from __future__ import annotations

import statistics
import time

import pytest
from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from tests.conftest import make_app, make_settings, serving
from tests.factories import register, unique_email

TRIES = 50
MAX_RELATIVE_GAP = 0.20


async def timed_login(client: AsyncClient, email: str) -> float:
    started = time.perf_counter()
    response = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": "not-the-password-1"}
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 401, response.text
    return elapsed


@pytest.mark.slow
async def test_unknown_email_and_wrong_password_take_the_same_time(
    settings: Settings, session_maker: SessionMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    # No throttling here: the 6th failure would otherwise answer 429 without hashing.
    unthrottled = make_settings(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        login_max_failures=1_000_000,
    )
    async with serving(make_app(unthrottled, session_maker)) as client:
        known = unique_email()
        await register(client, known)
        await timed_login(client, unique_email())  # warm-up: first-use costs on neither side
        unknown_times: list[float] = []
        wrong_times: list[float] = []
        for _ in range(TRIES):
            unknown_times.append(await timed_login(client, unique_email()))
            wrong_times.append(await timed_login(client, known))

    unknown, wrong = statistics.median(unknown_times), statistics.median(wrong_times)
    gap = abs(unknown - wrong) / max(unknown, wrong)
    with capsys.disabled():
        print(  # noqa: T201 - the measurement is the point of this test
            f"\nlogin timing over {TRIES} tries each: unknown e-mail median"
            f" {unknown * 1000:.1f} ms, wrong password median {wrong * 1000:.1f} ms,"
            f" difference {gap:.1%}"
        )
    assert gap < MAX_RELATIVE_GAP, (unknown_times, wrong_times)
