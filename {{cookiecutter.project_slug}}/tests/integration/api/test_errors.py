"""Every error is RFC 9457 problem+json, whoever raises it."""

from __future__ import annotations

from httpx import ASGITransport, AsyncClient

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.main import create_app
from tests.conftest import make_settings, serving


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


class TestRequestBodies:
    async def test_405_lists_every_method_of_the_path(self, client: AsyncClient) -> None:
        response = await client.put("/api/v1/auth/register")

        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        response = await client.put("/api/v1/users/me")
        assert response.headers["allow"] == "GET, HEAD, PATCH"

    async def test_a_non_json_body_is_a_415_problem(self, client: AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/register",
            content=b"email=a@example.com",
            headers={"content-type": "text/plain"},
        )

        assert response.status_code == 415
        assert response.headers["content-type"] == "application/problem+json"
        assert "application/json" in response.json()["detail"]

    async def test_malformed_json_names_the_body_and_the_position(
        self, client: AsyncClient
    ) -> None:
        response = await client.post(
            "/api/v1/auth/register",
            content=b'{"email": "a@example.com",}',
            headers={"content-type": "application/json"},
        )

        assert response.status_code == 422
        [error] = response.json()["errors"]
        assert error["field"] == "body"
        assert "at character 26" in error["message"]

    async def test_unknown_fields_are_refused_by_name(self, client: AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": "a@example.com", "password": "x" * 12, "role": "admin"},
        )

        assert response.status_code == 422
        assert [error["field"] for error in response.json()["errors"]] == ["role"]

    async def test_docs_page_escapes_the_service_name(self, settings: Settings) -> None:
        app = create_app(
            make_settings(database_url=settings.database_url, project_name="Tom & Jerry's <Shop>")
        )
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
            page = (await client.get("/docs")).text

        assert "<title>Tom &amp; Jerry&#x27;s &lt;Shop&gt; - Swagger UI</title>" in page


class TestProblemTypes:
    async def test_every_problem_type_resolves_to_a_page(self, client: AsyncClient) -> None:
        problem = (await client.get("/no/such/route")).json()

        assert problem["type"] == "/problems/not-found"
        page = await client.get(problem["type"])
        assert page.status_code == 200
        assert "<h1>Resource not found</h1>" in page.text

    async def test_an_unknown_problem_type_is_a_404(self, client: AsyncClient) -> None:
        response = await client.get("/problems/no-such-problem")

        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    async def test_the_base_is_configurable(self, settings: Settings) -> None:
        app = create_app(
            make_settings(
                database_url=settings.database_url,
                problem_type_base_url="https://docs.example.com/problems/",
                max_body_bytes=10,
            )
        )
        async with serving(app) as client:
            from_handler = (await client.get("/no/such/route")).json()
            from_middleware = (await client.post("/api/v1/auth/login", content=b"x" * 11)).json()

        assert from_handler["type"] == "https://docs.example.com/problems/not-found"
        assert from_middleware["type"] == "https://docs.example.com/problems/payload-too-large"
