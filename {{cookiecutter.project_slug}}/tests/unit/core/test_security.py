"""Password hashing and policy; tokens that cannot be forged, re-typed or re-aimed."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from jose import jwt

from {{ cookiecutter.project_slug }}.core.errors import AuthenticationError, ValidationFailedError
from {{ cookiecutter.project_slug }}.core.security import (
    AUDIENCE,
    ISSUER,
    check_password_policy,
    create_token,
    decode_token,
    hash_password,
    password_needs_rehash,
    verify_password,
)

KEY = "unit-test-signing-key-with-enough-entropy-0123456789"
EMAIL = "someone@example.com"


YEAR_2100 = 4_102_444_800


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": "user-1",
        "type": "access",
        "jti": "a" * 32,
        "iat": now,
        "exp": now + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    payload.update(overrides)
    return payload


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class TestPasswordHashing:
    def test_hash_verifies_only_the_same_password(self) -> None:
        hashed = hash_password("correct-horse-battery-9")
        assert hashed.startswith("$argon2")
        assert "correct-horse-battery-9" not in hashed
        assert verify_password("correct-horse-battery-9", hashed)
        assert not verify_password("correct-horse-battery-8", hashed)

    def test_same_password_hashes_differently_each_time(self) -> None:
        assert hash_password("correct-horse-battery-9") != hash_password("correct-horse-battery-9")

    def test_missing_hash_never_verifies(self) -> None:
        assert verify_password("anything-at-all", None) is False

    def test_fresh_hash_needs_no_rehash(self) -> None:
        assert password_needs_rehash(hash_password("correct-horse-battery-9")) is False


class TestPasswordPolicy:
    @pytest.mark.parametrize("password", ["x7#kQ2m", "x" * 129, ""])
    def test_length_outside_8_to_128_is_refused(self, password: str) -> None:
        with pytest.raises(ValidationFailedError, match="8 to 128 characters"):
            check_password_policy(password, email=EMAIL)

    @pytest.mark.parametrize("password", ["x7#kQ2mZ", "Zq" * 64])
    def test_length_bounds_are_inclusive(self, password: str) -> None:
        check_password_policy(password, email=EMAIL)

    @pytest.mark.parametrize("password", ["password", "12345678", "PassWord1"])
    def test_common_password_is_refused(self, password: str) -> None:
        with pytest.raises(ValidationFailedError, match="too common"):
            check_password_policy(password, email=EMAIL)

    def test_password_equal_to_email_is_refused(self) -> None:
        with pytest.raises(ValidationFailedError, match="e-mail"):
            check_password_policy("SomeOne@Example.com", email=EMAIL)

    def test_reasonable_password_is_accepted(self) -> None:
        check_password_policy("correct-horse-battery-9", email=EMAIL)


class TestTokens:
    def test_round_trip_keeps_the_claims(self) -> None:
        token, issued = create_token("user-1", kind="access", ttl_seconds=900, secret_key=KEY)
        decoded = decode_token(token, expected="access", secret_key=KEY)
        assert decoded.subject == "user-1"
        assert decoded.token_type == "access"
        assert decoded.token_id == issued.token_id
        assert (decoded.expires_at - decoded.issued_at).total_seconds() == 900

    def test_claims_carry_issuer_audience_and_unique_id(self) -> None:
        first, _ = create_token("user-1", kind="access", ttl_seconds=60, secret_key=KEY)
        second, _ = create_token("user-1", kind="access", ttl_seconds=60, secret_key=KEY)
        payload = jwt.get_unverified_claims(first)
        assert payload["iss"] == ISSUER
        assert payload["aud"] == AUDIENCE
        assert jwt.get_unverified_header(first)["alg"] == "HS256"
        assert payload["jti"] != jwt.get_unverified_claims(second)["jti"]

    def test_expired_token_is_refused(self) -> None:
        token, _ = create_token("user-1", kind="access", ttl_seconds=-5, secret_key=KEY)
        with pytest.raises(AuthenticationError):
            decode_token(token, expected="access", secret_key=KEY)

    def test_refresh_token_is_not_an_access_token(self) -> None:
        token, _ = create_token(
            "user-1", kind="refresh", ttl_seconds=60, secret_key=KEY, family="f" * 32
        )
        with pytest.raises(AuthenticationError):
            decode_token(token, expected="access", secret_key=KEY)

    def test_refresh_token_carries_its_family(self) -> None:
        token, issued = create_token(
            "user-1", kind="refresh", ttl_seconds=60, secret_key=KEY, family="f" * 32
        )
        decoded = decode_token(token, expected="refresh", secret_key=KEY)
        assert decoded.family == issued.family == "f" * 32
        assert decoded.token_id == issued.token_id

    def test_only_refresh_tokens_belong_to_a_family(self) -> None:
        with pytest.raises(ValueError, match="family"):
            create_token("user-1", kind="refresh", ttl_seconds=60, secret_key=KEY)
        with pytest.raises(ValueError, match="family"):
            create_token("user-1", kind="access", ttl_seconds=60, secret_key=KEY, family="f")

    def test_refresh_token_without_a_family_is_refused(self) -> None:
        token = jwt.encode(claims(type="refresh"), KEY, algorithm="HS256")
        with pytest.raises(AuthenticationError):
            decode_token(token, expected="refresh", secret_key=KEY)

    def test_token_signed_with_another_key_is_refused(self) -> None:
        token, _ = create_token("user-1", kind="access", ttl_seconds=60, secret_key=KEY)
        with pytest.raises(AuthenticationError):
            decode_token(token, expected="access", secret_key=KEY + "-rotated")

    def test_unsigned_alg_none_token_is_refused(self) -> None:
        token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims())}."
        with pytest.raises(AuthenticationError):
            decode_token(token, expected="access", secret_key=KEY)

    def test_token_with_another_algorithm_is_refused(self) -> None:
        # Correctly signed with the right key, but HS512 is not on the allow-list.
        token = jwt.encode(claims(), KEY, algorithm="HS512")
        with pytest.raises(AuthenticationError):
            decode_token(token, expected="access", secret_key=KEY)

    @pytest.mark.parametrize(
        "overrides",
        [
            {"aud": "another-service:api"},
            {"iss": "another-service"},
            {"jti": None},
            {"type": "api-key"},
            {"exp": None},
            # A fixed date: one computed at collection could pass before a long run reaches it.
            {"nbf": YEAR_2100},
            {"fam": "f" * 32},
        ],
        ids=["audience", "issuer", "no-jti", "unknown-type", "no-exp", "not-yet-valid", "fam"],
    )
    def test_token_with_wrong_claims_is_refused(self, overrides: dict[str, Any]) -> None:
        payload = {key: value for key, value in claims(**overrides).items() if value is not None}
        token = jwt.encode(payload, KEY, algorithm="HS256")
        with pytest.raises(AuthenticationError):
            decode_token(token, expected="access", secret_key=KEY)

    def test_hand_made_token_with_right_claims_is_accepted(self) -> None:
        # Guards the tests above: they fail for the claim they change, not for the helper.
        token = jwt.encode(claims(), KEY, algorithm="HS256")
        assert decode_token(token, expected="access", secret_key=KEY).subject == "user-1"

    @pytest.mark.parametrize("token", ["", "not-a-token", "a.b.c"])
    def test_garbage_is_refused(self, token: str) -> None:
        with pytest.raises(AuthenticationError):
            decode_token(token, expected="access", secret_key=KEY)
