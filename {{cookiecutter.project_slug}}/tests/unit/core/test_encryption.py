from __future__ import annotations

import pytest

from {{ cookiecutter.project_slug }}.core.encryption import (
    DecryptionError,
    EncryptionKeyError,
    Encryptor,
    derive_key,
    generate_key,
    parse_keys,
)

OLD, NEW = generate_key().encode(), generate_key().encode()
FIXED = "ZmVybmV0LWtleS1mb3ItdGVzdHMtb25seS0zMi1ieXQ="


def test_a_value_round_trips_and_is_randomised() -> None:
    encryptor = Encryptor([NEW])

    first, second = encryptor.encrypt("+44 20 7946 0958"), encryptor.encrypt("+44 20 7946 0958")

    assert first != second
    assert "7946" not in first
    assert encryptor.decrypt(first) == encryptor.decrypt(second) == "+44 20 7946 0958"


def test_after_rotation_old_values_still_decrypt_and_rotate_to_the_newest_key() -> None:
    token = Encryptor([OLD]).encrypt("secret")
    rotated_keys = Encryptor([NEW, OLD])

    rotated = rotated_keys.rotate(token)

    assert rotated_keys.decrypt(token) == "secret"
    assert not rotated_keys.is_current(token)
    assert rotated_keys.is_current(rotated)
    assert Encryptor([NEW]).decrypt(rotated) == "secret"


@pytest.mark.parametrize("mangle", [lambda t: t[:-4] + "AAAA", lambda t: "x" + t[1:]])
def test_a_tampered_value_is_refused(mangle: object) -> None:
    encryptor = Encryptor([NEW])
    token = encryptor.encrypt("secret")

    with pytest.raises(DecryptionError):
        encryptor.decrypt(mangle(token))  # type: ignore[operator]


def test_a_value_under_a_dropped_key_is_refused() -> None:
    token = Encryptor([OLD]).encrypt("secret")

    with pytest.raises(DecryptionError):
        Encryptor([NEW]).decrypt(token)
    with pytest.raises(DecryptionError):
        Encryptor([NEW]).rotate(token)


@pytest.mark.parametrize("value", ["", " , ", "short", "a" * 44, f"{FIXED},nope"])
def test_keys_that_are_not_fernet_keys_are_refused(value: str) -> None:
    with pytest.raises(EncryptionKeyError):
        parse_keys(value)


def test_several_keys_are_read_newest_first() -> None:
    assert parse_keys(f" {FIXED} ,{NEW.decode()}") == [FIXED.encode(), NEW]


def test_a_derived_key_is_a_stable_fernet_key() -> None:
    assert derive_key("s" * 32) == derive_key("s" * 32)
    assert parse_keys(derive_key("s" * 32).decode()) == [derive_key("s" * 32)]
