"""The real server under steady load while its backing services go away and come back.

The test reaches PostgreSQL{% if cookiecutter.use_redis == 'y' %} and Redis{% endif %} through proxies it cuts: every connection is
reset and new ones are refused for a few seconds, as during a restart, then accepted again. In
between the service answers 503 problems with `Retry-After` (never a 500, never a hung request)
and afterwards it recovers by itself, without a restart of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.factories import PASSWORD, unique_email
from tests.processes import fresh_database, running_server, server_env
from tests.proxy import CuttableProxy, cuttable_proxy
from tests.services import ServiceUrls

pytestmark = pytest.mark.slow

CLIENTS = 8
OUTAGE_SECONDS = 3.0
# Recovery is judged by outcomes (this many answers in a row are 200 again); the deadline only
# stops a test that would otherwise wait forever, so it is far above an idle machine's second.
RECOVERED_IN_A_ROW = 20
RECOVERY_DEADLINE_SECONDS = 90.0
REQUEST_TIMEOUT_SECONDS = 60.0


@pytest.fixture(scope="module")
async def migrated_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    async with fresh_database(service_urls.database, migrated=True) as url:
        yield url


def through(url: str, proxy: CuttableProxy) -> str:
    """`url` with its host and port replaced by the proxy's (credentials kept)."""
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    address = f"127.0.0.1:{proxy.port}"
    return parts._replace(netloc=f"{userinfo}@{address}" if userinfo else address).geturl()


@dataclass
class Load:
    """Clients reading the caller's profile in a loop; every outcome is kept in order."""

    base_url: str
    headers: dict[str, str]
    outcomes: list[tuple[str, int | str]] = field(default_factory=list)
    phase: str = "before"
    stopping: bool = False

    async def run(self) -> None:
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=REQUEST_TIMEOUT_SECONDS
        ) as http:
            await asyncio.gather(*(self._client(http) for _ in range(CLIENTS)))

    async def _client(self, http: httpx.AsyncClient) -> None:
        while not self.stopping:
            phase = self.phase
            try:
                response = await http.get("/api/v1/users/me")
            except httpx.HTTPError as exc:
                self.outcomes.append((phase, type(exc).__name__))
                continue
            if response.status_code == 503:
                assert response.headers["content-type"] == "application/problem+json"
                assert int(response.headers["retry-after"]) >= 1
            self.outcomes.append((phase, response.status_code))

    async def recovered(self) -> None:
        """Waits until the last RECOVERED_IN_A_ROW answers are all 200."""
        deadline = time.monotonic() + RECOVERY_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            last = [status for _, status in self.outcomes[-RECOVERED_IN_A_ROW:]]
            if len(last) == RECOVERED_IN_A_ROW and set(last) == {200}:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"no recovery: {self.summary()}")

    async def outage(self, proxy: CuttableProxy, name: str) -> None:
        self.phase = f"{name} down"
        proxy.cut()
        await asyncio.sleep(OUTAGE_SECONDS)
        self.phase = f"{name} back"
        proxy.restore()
        await self.recovered()

    def summary(self) -> dict[str, Counter[int | str]]:
        summary: dict[str, Counter[int | str]] = {}
        for phase, status in self.outcomes:
            summary.setdefault(phase, Counter())[status] += 1
        return summary


def sign_in(base_url: str) -> dict[str, str]:
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_SECONDS) as http:
        credentials = {"email": unique_email(), "password": PASSWORD}
        assert http.post("/api/v1/auth/register", json=credentials).status_code == 201
        login = http.post("/api/v1/auth/login", json=credentials)
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_outages_answer_503_and_the_service_recovers_by_itself(
    migrated_url: str, service_urls: ServiceUrls, tmp_path: Path
) -> None:
    database = make_url(migrated_url)
    with cuttable_proxy(database.host or "127.0.0.1", database.port or 5432) as pg_proxy:
        env = server_env(
            database.set(host="127.0.0.1", port=pg_proxy.port).render_as_string(
                hide_password=False
            ),
            service_urls,
        )
{%- if cookiecutter.use_redis == 'y' %}
        redis = urlsplit(service_urls.redis)
        redis_proxy_context = cuttable_proxy(redis.hostname or "127.0.0.1", redis.port or 6379)
{%- endif %}
        with (
{%- if cookiecutter.use_redis == 'y' %}
            redis_proxy_context as redis_proxy,
{%- endif %}
            running_server(
{%- if cookiecutter.use_redis == 'y' %}
                {**env, "REDIS_URL": through(service_urls.redis, redis_proxy)},
{%- else %}
                env,
{%- endif %}
                tmp_path / "server.log",
            ) as (base_url, server),
        ):
            load = Load(base_url, sign_in(base_url))
            running = asyncio.create_task(load.run())
            try:
                await load.recovered()
{%- if cookiecutter.use_redis == 'y' %}
                await load.outage(redis_proxy, "redis")
{%- endif %}
                await load.outage(pg_proxy, "database")
            finally:
                load.stopping = True
                await running
            log = server.log()

    summary = load.summary()
    statuses = {status for counts in summary.values() for status in counts}
    # Only answers, and only these: no 500, no reset connection, no request left hanging.
    assert statuses <= {200, 503}, summary
{%- if cookiecutter.use_redis == 'y' %}
    assert summary["redis down"][503] > 0, summary
{%- endif %}
    assert summary["database down"][503] > 0, summary
    assert "Traceback" not in log
