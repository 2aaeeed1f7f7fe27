"""`POST /items` with `Idempotency-Key`: a retry gets the first response and no second item."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import update

from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.models.idempotency_key import IdempotencyKey
from tests.factories import auth_headers


async def total(client: AsyncClient, headers: dict[str, str]) -> int:
    response = await client.get("/api/v1/items", headers=headers)
    count: int = response.json()["total"]
    return count


class TestIdempotencyKey:
    async def test_same_key_and_body_replays_the_first_response(self, client: AsyncClient) -> None:
        headers = {**await auth_headers(client), "Idempotency-Key": str(uuid.uuid4())}

        first = await client.post("/api/v1/items", json={"title": "Lamp"}, headers=headers)
        # The same body, written differently: the canonical form is compared.
        again = await client.post(
            "/api/v1/items",
            content=b'{ "title" : "Lamp" }',
            headers={**headers, "Content-Type": "application/json"},
        )

        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["ETag"] == first.headers["ETag"]
        assert again.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first.headers
        assert await total(client, headers) == 1

    async def test_same_key_with_another_body_is_a_422(self, client: AsyncClient) -> None:
        headers = {**await auth_headers(client), "Idempotency-Key": "order-1"}
        await client.post("/api/v1/items", json={"title": "Lamp"}, headers=headers)

        response = await client.post("/api/v1/items", json={"title": "Desk"}, headers=headers)

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/idempotency-key-reused")
        assert await total(client, headers) == 1

    async def test_keys_belong_to_one_user(self, client: AsyncClient) -> None:
        first = {**await auth_headers(client), "Idempotency-Key": "shared"}
        second = {**await auth_headers(client), "Idempotency-Key": "shared"}

        mine = await client.post("/api/v1/items", json={"title": "Lamp"}, headers=first)
        theirs = await client.post("/api/v1/items", json={"title": "Lamp"}, headers=second)

        assert mine.status_code == theirs.status_code == 201
        assert mine.json()["id"] != theirs.json()["id"]

    async def test_without_a_key_every_post_creates(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        for _ in range(2):
            response = await client.post("/api/v1/items", json={"title": "Lamp"}, headers=headers)
            assert response.status_code == 201

        assert await total(client, headers) == 2

    async def test_an_expired_key_runs_the_request_again(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = {**await auth_headers(client), "Idempotency-Key": "daily"}
        first = await client.post("/api/v1/items", json={"title": "Lamp"}, headers=headers)
        async with session_maker() as session:
            await session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == "daily")
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            await session.commit()

        # Even with another body: the old record is gone, not a reason to refuse.
        second = await client.post("/api/v1/items", json={"title": "Desk"}, headers=headers)

        assert second.status_code == 201
        assert second.json()["id"] != first.json()["id"]
        assert "Idempotent-Replayed" not in second.headers

    async def test_a_refused_request_leaves_the_key_free(self, client: AsyncClient) -> None:
        headers = {**await auth_headers(client), "Idempotency-Key": "retry-me"}

        failed = await client.post("/api/v1/items", json={"title": ""}, headers=headers)
        retried = await client.post("/api/v1/items", json={"title": "Lamp"}, headers=headers)

        assert failed.status_code == 422
        assert retried.status_code == 201

    @pytest.mark.parametrize("key", ["x" * 256, "with space", ""])
    async def test_a_malformed_key_is_a_422(self, client: AsyncClient, key: str) -> None:
        headers = {**await auth_headers(client), "Idempotency-Key": key}

        response = await client.post("/api/v1/items", json={"title": "Lamp"}, headers=headers)

        assert response.status_code == 422
