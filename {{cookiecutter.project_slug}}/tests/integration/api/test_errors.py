"""Every error is RFC 9457 problem+json, whoever raises it."""

from __future__ import annotations

from httpx import AsyncClient


def assert_problem(response_json: dict[str, object], status: int) -> None:
    assert response_json["status"] == status
    for key in ("type", "title", "detail", "instance", "request_id"):
        assert key in response_json


class TestProblemDetails:
    async def test_unknown_route_is_a_404_problem(self, client: AsyncClient) -> None:
        response = await client.get("/no/such/route")

        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert_problem(response.json(), 404)
        assert response.json()["request_id"] == response.headers["x-request-id"]

    async def test_wrong_method_is_a_405_problem(self, client: AsyncClient) -> None:
        response = await client.delete("/health/live")

        assert response.status_code == 405
        assert response.headers["content-type"] == "application/problem+json"
        assert "allow" in response.headers

    async def test_validation_errors_list_each_field(self, client: AsyncClient) -> None:
        response = await client.post("/api/v1/auth/register", json={"email": "not-an-email"})

        assert response.status_code == 422
        body = response.json()
        assert_problem(body, 422)
        fields = {error["field"] for error in body["errors"]}
        assert {"email", "password"} <= fields

    async def test_malformed_json_is_a_422_problem(self, client: AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/register",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"

    async def test_oversized_body_is_a_413_problem(self, client: AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/register",
            content=b"x" * (1_048_576 + 1),
            headers={"content-type": "application/json"},
        )

        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"

    async def test_incoming_request_id_is_echoed(self, client: AsyncClient) -> None:
        response = await client.get("/health/live", headers={"X-Request-ID": "abc-123-def-456"})

        assert response.headers["x-request-id"] == "abc-123-def-456"

    async def test_security_headers_are_set(self, client: AsyncClient) -> None:
        response = await client.get("/health/live")

        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "content-security-policy" in response.headers
