"""Two real server processes sharing Redis: a change made through one is never followed by a
stale read through the other, while reads are served from the shared cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import PASSWORD, unique_email
from tests.processes import fresh_database, running_server, server_env
from tests.services import ServiceUrls

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def migrated_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    async with fresh_database(service_urls.database, migrated=True) as url:
        yield url


def cache_hits(base_url: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "cache_requests_total" and sample.labels.get("result") == "hit"
    )


def test_no_stale_read_across_processes(
    migrated_url: str, service_urls: ServiceUrls, tmp_path: Path
) -> None:
    env = server_env(migrated_url, service_urls)  # one REDIS_KEY_PREFIX for both servers
    with (
        running_server(env, tmp_path / "a.log") as (url_a, _),
        running_server(env, tmp_path / "b.log") as (url_b, _),
        httpx.Client(base_url=url_a, timeout=10) as a,
        httpx.Client(base_url=url_b, timeout=10) as b,
    ):
        email = unique_email()
        assert a.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        login = a.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        item_id = a.post("/api/v1/items", json={"title": "v0"}, headers=auth).json()["id"]
        path = f"/api/v1/items/{item_id}"

        for version in range(1, 11):
            writer, reader = (a, b) if version % 2 else (b, a)
            # Both read first, so the old item is in the shared cache before the change.
            assert reader.get(path, headers=auth).json()["title"] == f"v{version - 1}"
            assert writer.get(path, headers=auth).json()["title"] == f"v{version - 1}"

            patched = writer.patch(path, json={"title": f"v{version}"}, headers=auth)
            assert patched.status_code == 200, patched.text

            assert reader.get(path, headers=auth).json()["title"] == f"v{version}"

        assert b.delete(path, headers=auth).status_code == 204
        assert a.get(path, headers=auth).status_code == 404

        # The reads were served from the shared cache, not merely correct.
        assert cache_hits(url_a) + cache_hits(url_b) >= 10
