"""Attacks on authentication and authorisation, against the app with its real stores.

Each forged or misused credential is sent to a route that would change the account
(`PATCH /api/v1/users/me`); each must be refused with the right status as problem+json, and the
account must be unchanged afterwards. Tokens are forged by hand (HMAC and base64), not with the
library the service uses, so a flaw in that library's encoder cannot hide one in its decoder.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from httpx import AsyncClient, Response
from jose import jwt
from sqlalchemy import update

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.security import AUDIENCE, ISSUER
from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.models.api_key import ApiKey
from tests.conftest import SECRET_KEY, make_app, make_settings, serving
from tests.factories import (
    PASSWORD,
    bearer,
    login,
    register,
    unique_email,
)
from tests.integration.api.v1.test_users import make_admin

PROBLEM = "application/problem+json"
ORIGINAL_NAME = "Original Name"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    claims: dict[str, Any], *, key: str = SECRET_KEY, header: dict[str, Any] | None = None
) -> str:
    """A JWT signed with HS256 (or, for `alg: none`, not signed at all)."""
    header = header or {"alg": "HS256", "typ": "JWT"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if header["alg"] == "none":
        return f"{signing_input}."
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def access_claims(subject: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "type": "access",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


@dataclass
class Victim:
    id: str
    email: str
    access_token: str
    refresh_token: str


@pytest.fixture
async def victim(client: AsyncClient) -> Victim:
    email = unique_email()
    user = await client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": ORIGINAL_NAME},
    )
    pair = await login(client, email)
    return Victim(
        str(user.json()["id"]), email, str(pair["access_token"]), str(pair["refresh_token"])
    )


async def tamper_with_profile(client: AsyncClient, token: str) -> Response:
    return await client.patch(
        "/api/v1/users/me", json={"full_name": "pwned"}, headers=bearer(token)
    )


async def assert_refused(response: Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == status


async def assert_unchanged(client: AsyncClient, victim: Victim) -> None:
    # Through a fresh login: the victim's own tokens may be the ones the attack revoked.
    fresh = await login(client, victim.email)
    me = await client.get("/api/v1/users/me", headers=bearer(fresh["access_token"]))
    assert me.json()["full_name"] == ORIGINAL_NAME


YEAR_2100 = 4_102_444_800


class TestForgedAccessTokens:
    async def test_a_correctly_forged_token_is_accepted(
        self, client: AsyncClient, victim: Victim
    ) -> None:
        # Guards the attacks below: each fails for what it changes, not for the forging helper.
        response = await client.get(
            "/api/v1/users/me", headers=bearer(forge(access_claims(victim.id)))
        )

        assert response.status_code == 200

    @pytest.mark.parametrize(
        ("header", "key", "overrides"),
        [
            ({"alg": "none", "typ": "JWT"}, SECRET_KEY, {}),
            ({"alg": "HS256", "typ": "JWT"}, "another-secret-" + SECRET_KEY, {}),
            (None, SECRET_KEY, {"exp": int(time.time()) - 60}),
            # A fixed date: one computed at collection could pass before a long run reaches it.
            (None, SECRET_KEY, {"nbf": YEAR_2100}),
            (None, SECRET_KEY, {"aud": "another-service:api"}),
            (None, SECRET_KEY, {"iss": "another-service"}),
            (None, SECRET_KEY, {"exp": None}),
            (None, SECRET_KEY, {"jti": None}),
            (None, SECRET_KEY, {"type": "refresh", "fam": "f" * 32}),
        ],
        ids=[
            "alg-none",
            "another-secret",
            "expired",
            "not-yet-valid",
            "wrong-audience",
            "wrong-issuer",
            "missing-exp",
            "missing-jti",
            "refresh-type",
        ],
    )
    async def test_is_refused_without_effect(
        self,
        client: AsyncClient,
        victim: Victim,
        header: dict[str, Any] | None,
        key: str,
        overrides: dict[str, Any],
    ) -> None:
        token = forge(access_claims(victim.id, **overrides), key=key, header=header)

        await assert_refused(await tamper_with_profile(client, token), 401)
        await assert_unchanged(client, victim)

    async def test_a_tampered_payload_is_refused(self, client: AsyncClient, victim: Victim) -> None:
        other = await register(client)
        header, _, signature = victim.access_token.split(".")
        payload = _b64(json.dumps(access_claims(str(other["id"]))).encode())

        response = await tamper_with_profile(client, f"{header}.{payload}.{signature}")

        await assert_refused(response, 401)
        await assert_unchanged(client, victim)

    async def test_a_token_over_8_kib_is_a_401_not_a_500(
        self, client: AsyncClient, victim: Victim
    ) -> None:
        token = forge(access_claims(victim.id, padding="x" * 9000))

        await assert_refused(await tamper_with_profile(client, token), 401)
        await assert_unchanged(client, victim)


class TestMisusedTokens:
    async def test_a_refresh_token_is_not_an_access_token(
        self, client: AsyncClient, victim: Victim
    ) -> None:
        await assert_refused(await tamper_with_profile(client, victim.refresh_token), 401)
        await assert_unchanged(client, victim)

    async def test_an_access_token_cannot_refresh(
        self, client: AsyncClient, victim: Victim
    ) -> None:
        response = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": victim.access_token}
        )

        await assert_refused(response, 401)
        # The victim's session is untouched.
        refreshed = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": victim.refresh_token}
        )
        assert refreshed.status_code == 200

    async def test_a_reused_rotated_refresh_token_kills_the_family(
        self, client: AsyncClient, victim: Victim
    ) -> None:
        rotated = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": victim.refresh_token}
        )
        successor = rotated.json()["refresh_token"]

        reuse = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": victim.refresh_token}
        )
        after = await client.post("/api/v1/auth/refresh", json={"refresh_token": successor})

        await assert_refused(reuse, 401)
        await assert_refused(after, 401)

    async def test_a_forged_refresh_token_for_a_live_family_is_refused(
        self, client: AsyncClient, victim: Victim
    ) -> None:
        # The right family id and the right subject are not enough without the current jti.
        family = json.loads(base64.urlsafe_b64decode(victim.refresh_token.split(".")[1] + "=="))
        claims = access_claims(victim.id, type="refresh", fam=family["fam"])

        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": forge(claims)})

        await assert_refused(response, 401)

    async def test_a_token_after_logout_is_refused(
        self, client: AsyncClient, victim: Victim
    ) -> None:
        logout = await client.post(
            "/api/v1/auth/logout",
            json={"refresh_token": victim.refresh_token},
            headers=bearer(victim.access_token),
        )
        assert logout.status_code == 204

        await assert_refused(await tamper_with_profile(client, victim.access_token), 401)
        refresh = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": victim.refresh_token}
        )
        await assert_refused(refresh, 401)
        await assert_unchanged(client, victim)

    async def test_a_deactivated_users_token_is_refused(
        self, client: AsyncClient, victim: Victim, session_maker: SessionMaker
    ) -> None:
        admin_email = unique_email()
        await register(client, admin_email)
        await make_admin(session_maker, admin_email)
        admin = bearer((await login(client, admin_email))["access_token"])
        await client.patch(f"/api/v1/users/{victim.id}", json={"is_active": False}, headers=admin)

        await assert_refused(await tamper_with_profile(client, victim.access_token), 401)
        refresh = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": victim.refresh_token}
        )
        await assert_refused(refresh, 401)
        await client.patch(f"/api/v1/users/{victim.id}", json={"is_active": True}, headers=admin)
        await assert_unchanged(client, victim)


class TestLoginFields:
    @pytest.mark.parametrize(
        "credentials",
        [
            {"email": "' OR '1'='1@example.com", "password": "' OR '1'='1"},
            {"email": "admin@example.com'; DROP TABLE users; --", "password": "x"},
            {"email": "a@example.com", "password": "' OR 1=1; DROP TABLE users; --"},
            {"email": "a" * 10_000 + "@example.com", "password": PASSWORD},
            {"email": "a@example.com", "password": "p" * 100_000},
            {"email": "a@example.com\x00", "password": PASSWORD},
        ],
        ids=["sql-both", "sql-email", "sql-password", "long-email", "long-password", "nul"],
    )
    async def test_hostile_login_fields_are_refused_cleanly(
        self, client: AsyncClient, victim: Victim, credentials: dict[str, str]
    ) -> None:
        response = await client.post("/api/v1/auth/login", json=credentials)

        assert response.status_code in (401, 413, 422), response.text
        assert response.headers["content-type"] == PROBLEM
        # The users table is still there and the victim can still log in.
        await assert_unchanged(client, victim)

    @pytest.mark.parametrize(
        "form",
        [
            {"username": "' OR '1'='1", "password": "' OR '1'='1"},
            {"username": "x" * 10_000, "password": "y" * 10_000},
        ],
        ids=["sql", "long"],
    )
    async def test_hostile_form_fields_are_refused_cleanly(
        self, client: AsyncClient, victim: Victim, form: dict[str, str]
    ) -> None:
        response = await client.post("/api/v1/auth/login", data=form)

        assert response.status_code in (401, 413, 422), response.text
        assert response.headers["content-type"] == PROBLEM
        await assert_unchanged(client, victim)


class TestPermissions:
    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("GET", "/api/v1/users", None),
            ("GET", "/api/v1/users/{id}", None),
            ("PATCH", "/api/v1/users/{id}", {"role": "admin"}),
            ("PATCH", "/api/v1/users/{id}", {"is_active": False}),
        ],
        ids=["list", "read", "promote", "deactivate"],
    )
    async def test_a_member_on_admin_routes_gets_403_without_effect(
        self,
        client: AsyncClient,
        victim: Victim,
        method: str,
        path: str,
        body: dict[str, Any] | None,
    ) -> None:
        response = await client.request(
            method,
            path.format(id=victim.id),
            json=body,
            headers=bearer(victim.access_token),
        )

        await assert_refused(response, 403)
        me = await client.get("/api/v1/users/me", headers=bearer(victim.access_token))
        assert me.json()["role"] == "user"
        assert me.json()["is_active"] is True


def _flip_last(text: str) -> str:
    return text[:-1] + ("0" if text[-1] != "0" else "1")


class TestApiKeyAttacks:
    """A key of an admin, scoped to `users:admin`, tries to deactivate the victim."""

    @pytest.fixture
    async def admin_key(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> tuple[dict[str, str], dict[str, Any]]:
        email = unique_email()
        await register(client, email)
        await make_admin(session_maker, email)
        session = bearer((await login(client, email))["access_token"])
        response = await client.post(
            "/api/v1/api-keys", json={"name": "ops", "scopes": ["users:admin"]}, headers=session
        )
        assert response.status_code == 201, response.text
        return session, response.json()

    @staticmethod
    async def deactivate(client: AsyncClient, victim: Victim, key: str) -> Response:
        return await client.patch(
            f"/api/v1/users/{victim.id}", json={"is_active": False}, headers={"X-API-Key": key}
        )

    @staticmethod
    async def assert_still_active(client: AsyncClient, victim: Victim) -> None:
        me = await client.get("/api/v1/users/me", headers=bearer(victim.access_token))
        assert me.status_code == 200
        assert me.json()["is_active"] is True

    async def test_the_genuine_key_works(
        self,
        client: AsyncClient,
        victim: Victim,
        admin_key: tuple[dict[str, str], dict[str, Any]],
    ) -> None:
        # Guards the attacks below: each fails for what it changes, not for the set-up.
        response = await client.get(
            f"/api/v1/users/{victim.id}", headers={"X-API-Key": admin_key[1]["key"]}
        )

        assert response.status_code == 200

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda key: key.rpartition(".")[0] + ".wrong-secret-" + "x" * 30,
            _flip_last,
            lambda key: _flip_last(key.partition(".")[0]) + "." + key.partition(".")[2],
            lambda key: "zz" + key.partition("_")[1] + key.partition("_")[2],
            lambda key: key + "x" * 200,
        ],
        ids=["wrong-secret", "one-char-off", "forged-key-id", "wrong-prefix", "overlong"],
    )
    async def test_a_mangled_key_is_a_401_without_effect(
        self,
        client: AsyncClient,
        victim: Victim,
        admin_key: tuple[dict[str, str], dict[str, Any]],
        mangle: Any,
    ) -> None:
        response = await self.deactivate(client, victim, mangle(admin_key[1]["key"]))

        await assert_refused(response, 401)
        await self.assert_still_active(client, victim)

    async def test_a_revoked_key_is_a_401_without_effect(
        self,
        client: AsyncClient,
        victim: Victim,
        admin_key: tuple[dict[str, str], dict[str, Any]],
    ) -> None:
        session, key = admin_key
        revoked = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=session)
        assert revoked.status_code == 204

        await assert_refused(await self.deactivate(client, victim, key["key"]), 401)
        await self.assert_still_active(client, victim)

    async def test_an_expired_key_is_a_401_without_effect(
        self,
        client: AsyncClient,
        victim: Victim,
        admin_key: tuple[dict[str, str], dict[str, Any]],
        session_maker: SessionMaker,
    ) -> None:
        _, key = admin_key
        async with session_maker() as session:
            await session.execute(
                update(ApiKey)
                .where(ApiKey.id == uuid.UUID(key["id"]))
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            await session.commit()

        await assert_refused(await self.deactivate(client, victim, key["key"]), 401)
        await self.assert_still_active(client, victim)

    async def test_an_out_of_scope_key_is_a_403_without_effect(
        self,
        client: AsyncClient,
        victim: Victim,
        admin_key: tuple[dict[str, str], dict[str, Any]],
    ) -> None:
        # The owner is an admin, but this key was given `items:read` only.
        session, _ = admin_key
        created = await client.post(
            "/api/v1/api-keys", json={"name": "reader", "scopes": ["items:read"]}, headers=session
        )

        response = await self.deactivate(client, victim, created.json()["key"])

        await assert_refused(response, 403)
        await self.assert_still_active(client, victim)

    async def test_a_key_cannot_mint_a_broader_key(
        self,
        client: AsyncClient,
        admin_key: tuple[dict[str, str], dict[str, Any]],
    ) -> None:
        session, key = admin_key

        response = await client.post(
            "/api/v1/api-keys",
            json={"name": "wider", "scopes": ["users:admin", "items:admin"]},
            headers={"X-API-Key": key["key"]},
        )

        await assert_refused(response, 403)
        assert len((await client.get("/api/v1/api-keys", headers=session)).json()) == 1


@functools.cache
def rsa_key_pair() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


class TestAsymmetricKeys:
    """With JWT_PRIVATE_KEY/JWT_PUBLIC_KEY the service signs RS256 and accepts nothing else."""

    @pytest.fixture
    async def rs256(
        self, settings: Settings, session_maker: SessionMaker
    ) -> AsyncIterator[AsyncClient]:
        private_pem, public_pem = rsa_key_pair()
        rs256_settings = make_settings(
            database_url=settings.database_url,
            redis_url=settings.redis_url,
            jwt_private_key=private_pem,
            jwt_public_key=public_pem,
        )
        async with serving(make_app(rs256_settings, session_maker)) as client:
            yield client

    @pytest.fixture
    async def rs256_victim(self, rs256: AsyncClient) -> Victim:
        email = unique_email()
        user = await rs256.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "full_name": ORIGINAL_NAME},
        )
        pair = await login(rs256, email)
        return Victim(
            str(user.json()["id"]), email, str(pair["access_token"]), str(pair["refresh_token"])
        )

    async def test_tokens_are_rs256_and_verify_with_the_public_key_alone(
        self, rs256: AsyncClient, rs256_victim: Victim
    ) -> None:
        header = json.loads(
            base64.urlsafe_b64decode(rs256_victim.access_token.split(".")[0] + "==")
        )
        # What another service does: verify with the public key, nothing else.
        claims = jwt.decode(
            rs256_victim.access_token, rsa_key_pair()[1], algorithms=["RS256"], audience=AUDIENCE
        )

        assert header["alg"] == "RS256"
        assert claims["sub"] == rs256_victim.id
        me = await rs256.get("/api/v1/users/me", headers=bearer(rs256_victim.access_token))
        assert me.status_code == 200

    @pytest.mark.parametrize("use_public_key", [True, False], ids=["public-key", "secret-key"])
    async def test_an_hs256_token_is_refused_without_effect(
        self, rs256: AsyncClient, rs256_victim: Victim, use_public_key: bool
    ) -> None:
        # Key confusion: HS256 "signed" with the public key, which every verifier has.
        key = rsa_key_pair()[1] if use_public_key else SECRET_KEY
        token = forge(access_claims(rs256_victim.id), key=key)

        await assert_refused(await tamper_with_profile(rs256, token), 401)
        await assert_unchanged(rs256, rs256_victim)
