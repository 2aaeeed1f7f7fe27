"""The in-process token store: rotation, reuse, revocation, expiry and its bound."""

from __future__ import annotations

from {{ cookiecutter.project_slug }}.core.token_store import InMemoryTokenStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rotation_swaps_the_current_token() -> None:
    store = InMemoryTokenStore()
    await store.start_family("user-1", "fam-1", "jti-1", 60)

    assert await store.rotate("fam-1", "jti-1", "jti-2", 60) is True
    assert await store.rotate("fam-1", "jti-2", "jti-3", 60) is True


async def test_a_retired_token_ends_the_family() -> None:
    store = InMemoryTokenStore()
    await store.start_family("user-1", "fam-1", "jti-1", 60)
    await store.rotate("fam-1", "jti-1", "jti-2", 60)

    assert await store.rotate("fam-1", "jti-1", "jti-x", 60) is False
    assert await store.rotate("fam-1", "jti-2", "jti-3", 60) is False


async def test_ending_a_users_families_leaves_other_users() -> None:
    store = InMemoryTokenStore()
    await store.start_family("user-1", "fam-1", "jti-1", 60)
    await store.start_family("user-1", "fam-2", "jti-2", 60)
    await store.start_family("user-2", "fam-3", "jti-3", 60)

    await store.end_user_families("user-1")

    assert await store.rotate("fam-1", "jti-1", "n1", 60) is False
    assert await store.rotate("fam-2", "jti-2", "n2", 60) is False
    assert await store.rotate("fam-3", "jti-3", "n3", 60) is True


async def test_revocations_and_families_expire_with_their_tokens() -> None:
    clock = Clock()
    store = InMemoryTokenStore(clock=clock)
    await store.revoke("jti-1", 30)
    await store.start_family("user-1", "fam-1", "jti-2", 30)
    assert await store.is_revoked("jti-1") is True

    clock.now += 31

    assert await store.is_revoked("jti-1") is False
    assert await store.rotate("fam-1", "jti-2", "jti-3", 30) is False


async def test_memory_is_bounded() -> None:
    store = InMemoryTokenStore(max_entries=10)
    for number in range(50):
        await store.revoke(f"jti-{number}", 60)

    assert await store.is_revoked("jti-49") is True
    assert await store.is_revoked("jti-0") is False
