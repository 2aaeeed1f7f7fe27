"""Password hashing and token signing, each behind a small function so the library can change.

Passwords: passlib's CryptContext with argon2 only, from `libpass`, the maintained fork that
installs the same `passlib` import (passlib 1.7.4 is unmaintained and breaks on bcrypt >= 4.1).
Tokens: python-jose with an explicit algorithm allow-list, so a token cannot pick its own
algorithm (`alg: none`, or HS512 against an HS256 key). A deployment uses exactly one algorithm:
HS256 with SECRET_KEY (the default), or RS256 with JWT_PRIVATE_KEY/JWT_PUBLIC_KEY so that other
services can verify tokens with the public key alone; then an HS256 token "signed" with the
public key (key confusion) is refused like any other unexpected algorithm. (python-jose has no
EdDSA.) This is the only module that imports either library: swapping in PyJWT or pwdlib means
changing this file alone.

Every token carries `sub`, `type`, `jti`, `iat`, `nbf`, `exp`, `iss` and `aud`; refresh tokens
also carry `fam`, the family id shared by every refresh token descended from one login.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib.resources import files
from typing import Any, Literal

from jose import JWTError, jwt
from passlib.context import CryptContext
from prometheus_client import Counter

from {{ cookiecutter.project_slug }}.core.errors import AuthenticationError, ValidationFailedError
from {{ cookiecutter.project_slug }}.core.jwt_keys import ALGORITHM, ASYMMETRIC_ALGORITHM

ALLOWED_ALGORITHMS = [ALGORITHM, ASYMMETRIC_ALGORITHM]
ISSUER = "{{ cookiecutter.project_slug }}"
AUDIENCE = "{{ cookiecutter.project_slug }}:api"
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128  # bounds the hashing cost an anonymous caller can demand

TokenType = Literal["access", "refresh"]

AUTH_FAILURES = Counter(
    "auth_failures",
    "Requests refused for failed authentication, by reason.",
    ["reason"],
)

_passwords = CryptContext(schemes=["argon2"], deprecated="auto")
# Verified when the e-mail is unknown, so both failures cost the same time.
_DUMMY_HASH = _passwords.hash("not-a-real-password-but-the-same-cost")


def hash_password(password: str) -> str:
    return _passwords.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-work check: an absent hash still pays for one verification."""
    if password_hash is None:
        _passwords.verify(password, _DUMMY_HASH)
        return False
    return bool(_passwords.verify(password, password_hash))


def password_needs_rehash(password_hash: str) -> bool:
    return bool(_passwords.needs_update(password_hash))


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    resource = files("{{ cookiecutter.project_slug }}.core") / "common_passwords.txt"
    text = resource.read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def check_password_policy(password: str, *, email: str) -> None:
    """Raise `ValidationFailedError` naming the first rule the password breaks."""
    broken: str | None = None
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        broken = f"password must be {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters long"
    elif password.lower() in _common_passwords():
        broken = "password is too common; choose a less guessable one"
    elif password.lower() == email.lower():
        broken = "password must not be the e-mail address"
    if broken is not None:
        raise ValidationFailedError(
            broken, errors=[{"field": "password", "message": broken, "type": "password_policy"}]
        )


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    token_type: TokenType
    token_id: str
    issued_at: datetime
    expires_at: datetime
    family: str | None = None
    """Refresh tokens only: the login this token descends from."""


def new_token_id() -> str:
    return uuid.uuid4().hex


def create_token(
    subject: str,
    *,
    kind: TokenType,
    ttl_seconds: int,
    secret_key: str,
    family: str | None = None,
    algorithm: str = ALGORITHM,
) -> tuple[str, TokenClaims]:
    """A signed token; `secret_key` is the HS256 secret or, for RS256, the private key (PEM)."""
    if algorithm not in ALLOWED_ALGORITHMS:
        raise ValueError(f"unsupported algorithm {algorithm}")
    if (kind == "refresh") != (family is not None):
        raise ValueError("refresh tokens, and only they, belong to a family")
    now = datetime.now(UTC)
    claims = TokenClaims(
        subject=subject,
        token_type=kind,
        token_id=new_token_id(),
        issued_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
        family=family,
    )
    payload: dict[str, Any] = {
        "sub": claims.subject,
        "type": claims.token_type,
        "jti": claims.token_id,
        "iat": int(claims.issued_at.timestamp()),
        "nbf": int(claims.issued_at.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    if family is not None:
        payload["fam"] = family
    return jwt.encode(payload, secret_key, algorithm=algorithm), claims


def decode_token(
    token: str, *, expected: TokenType, secret_key: str, algorithm: str = ALGORITHM
) -> TokenClaims:
    """Verify signature, algorithm, expiry, issuer, audience and type; any failure is a 401.

    `secret_key` is the HS256 secret or, for RS256, the public key (PEM); only `algorithm` is
    accepted, whatever the token's header says.
    """
    if algorithm not in ALLOWED_ALGORITHMS:
        raise ValueError(f"unsupported algorithm {algorithm}")
    try:
        payload = jwt.decode(
            token,
            secret_key,
            algorithms=[algorithm],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={
                "require_exp": True,
                "require_iat": True,
                "require_sub": True,
                "require_jti": True,
            },
        )
    except JWTError:
        raise AuthenticationError(
            "the token is invalid or has expired", reason="invalid_token"
        ) from None
    family = payload.get("fam")
    if (
        payload.get("type") != expected
        or not isinstance(payload.get("jti"), str)
        or (expected == "refresh") != isinstance(family, str)
    ):
        raise AuthenticationError("the token is invalid or has expired", reason="invalid_token")
    return TokenClaims(
        subject=str(payload["sub"]),
        token_type=expected,
        token_id=payload["jti"],
        issued_at=datetime.fromtimestamp(payload["iat"], UTC),
        expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        family=family if isinstance(family, str) else None,
    )
