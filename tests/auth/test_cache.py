"""The verified-token cache: hits, time checks on every hit, bounds, copies.

Time is an input: these tests give the verifier (wall clock) and the cache (monotonic
clock) clocks they move by hand. Key rotation and a real server: test_cache_rotation.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from partydeco import auth
from partydeco.auth import (
    BadSignature,
    ExpiredToken,
    InvalidToken,
    JWTVerifier,
    TokenCache,
    TokenNotYetValid,
    WrongAudience,
)
from partydeco.auth.cache import ClaimsSnapshot, token_digest
from tests.support.auth_cases import K_RSA, POLICY
from tests.support.authkit import claims, mint
from tests.support.token_cache import NOW, Clock, counting_verifier


def at(now: int, **overrides: Any) -> dict[str, Any]:
    """Claims issued at *now*, valid for 5 minutes."""
    return claims(iat=now, exp=now + 300, **overrides)


# -- TokenCache --------------------------------------------------------------------------


def test_cache_is_lru_bounded() -> None:
    cache: TokenCache[str] = TokenCache(max_entries=3, max_age=60, clock=Clock())
    for name in "abc":
        cache.store(token_digest(name), name)
    assert cache.lookup(token_digest("a")) == "a"  # "a" is now the most recently used
    cache.store(token_digest("d"), "d")
    assert len(cache) == 3
    assert cache.lookup(token_digest("b")) is None  # the least recently used went
    assert [cache.lookup(token_digest(n)) for n in "acd"] == ["a", "c", "d"]


def test_cache_entries_end_at_max_age_or_their_own_ttl() -> None:
    clock = Clock(0.0)
    cache: TokenCache[str] = TokenCache(max_entries=10, max_age=60, clock=clock)
    cache.store(b"long", "long", ttl=1000)  # capped at max_age
    cache.store(b"short", "short", ttl=5)
    cache.store(b"dead", "dead", ttl=0)  # nothing to keep
    assert len(cache) == 2
    clock.now = 4.9
    assert cache.lookup(b"short") == "short"
    clock.now = 5.0
    assert cache.lookup(b"short") is None
    clock.now = 59.9
    assert cache.lookup(b"long") == "long"
    clock.now = 60.0
    assert cache.lookup(b"long") is None
    assert len(cache) == 0


def test_cache_forget_and_clear() -> None:
    cache: TokenCache[str] = TokenCache(clock=Clock())
    cache.store(token_digest("tok-1"), "one")
    cache.store(token_digest("tok-2"), "two")
    cache.forget("tok-1")
    assert cache.lookup(token_digest("tok-1")) is None
    assert len(cache) == 1
    cache.clear()
    assert len(cache) == 0
    assert "tok" not in repr(cache)


@pytest.mark.parametrize("options", [{"max_entries": 0}, {"max_age": 0}, {"max_age": -1}])
def test_cache_bounds_must_be_positive(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="turn the cache off"):
        TokenCache(**options)  # type: ignore[arg-type]


def test_digest_is_sha256_of_the_token_and_never_raises() -> None:
    assert token_digest("abc").hex().startswith("ba7816bf")  # SHA-256("abc")
    assert len(token_digest("\ud800")) == 32  # a lone surrogate is hashed, not an error


def test_snapshot_copies_share_nothing_mutable() -> None:
    snapshot = ClaimsSnapshot(
        {"sub": "u", "aud": ["a", "b"], "org": {"roles": ["admin"], "id": 7}, "n": 1}
    )
    first = snapshot.copy()
    first["sub"] = "admin"
    first["aud"].append("evil")
    first["org"]["roles"].append("owner")
    first["org"]["id"] = 0
    assert snapshot.copy() == {
        "sub": "u",
        "aud": ["a", "b"],
        "org": {"roles": ["admin"], "id": 7},
        "n": 1,
    }


# -- JWTVerifier: hits -------------------------------------------------------------------


async def test_a_reused_token_is_verified_once_and_gets_the_same_claims() -> None:
    verifier, keys = counting_verifier()
    token = mint(K_RSA, claims(roles=["member"]))
    first = await verifier.verify(token)
    second = await verifier.verify(token)
    third = await verifier.verify(token)
    assert first == second == third
    assert first["sub"] == "user-1"
    assert keys.asked == 1  # the later calls never reached the keys
    assert verifier.cache is not None and len(verifier.cache) == 1


async def test_hs256_tokens_are_cached_too() -> None:
    from tests.support.authkit import SECRET

    verifier = JWTVerifier.from_secret(SECRET, audience=POLICY["audience"])
    token = auth.issue_token(SECRET, "alice", audience=POLICY["audience"])
    assert (await verifier.verify(token))["sub"] == "alice"
    assert (await verifier.verify(token))["sub"] == "alice"
    assert verifier.cache is not None and len(verifier.cache) == 1


async def test_claims_from_a_hit_cannot_be_corrupted_by_a_caller() -> None:
    verifier, _ = counting_verifier()
    token = mint(K_RSA, claims(roles=["member"], org={"id": "acme", "teams": ["a"]}))
    for _ in range(2):  # the miss's dict and a hit's dict are both the caller's own
        mine = await verifier.verify(token)
        mine["sub"] = "admin"
        mine["roles"].append("owner")
        mine["org"]["teams"].append("root")
        del mine["exp"]
    again = await verifier.verify(token)
    assert again["sub"] == "user-1"
    assert again["roles"] == ["member"]
    assert again["org"] == {"id": "acme", "teams": ["a"]}
    assert "exp" in again


async def test_a_token_differing_by_one_character_is_a_miss() -> None:
    verifier, keys = counting_verifier()
    token = mint(K_RSA)
    await verifier.verify(token)
    head, payload, signature = token.split(".")
    middle = len(signature) // 2
    swapped = "A" if signature[middle] != "A" else "B"
    forged = f"{head}.{payload}.{signature[:middle]}{swapped}{signature[middle + 1 :]}"
    with pytest.raises(BadSignature):
        await verifier.verify(forged)
    assert keys.asked == 2  # verified in full, not answered from the cache
    assert (await verifier.verify(token))["sub"] == "user-1"
    assert keys.asked == 2


async def test_a_refused_token_is_never_cached() -> None:
    verifier, keys = counting_verifier()
    wrong_audience = mint(K_RSA, claims(aud="someone-else"))
    for _ in range(3):
        with pytest.raises(WrongAudience):
            await verifier.verify(wrong_audience)
    assert keys.asked == 3
    assert verifier.cache is not None and len(verifier.cache) == 0


async def test_a_token_refused_as_not_yet_valid_is_accepted_once_valid() -> None:
    clock = Clock()
    verifier, _ = counting_verifier(clock=clock, leeway=0)
    token = mint(K_RSA, at(NOW, nbf=NOW + 10))
    with pytest.raises(TokenNotYetValid):
        await verifier.verify(token)
    clock.now = NOW + 10
    assert (await verifier.verify(token))["sub"] == "user-1"


# -- JWTVerifier: time-based claims on every hit ----------------------------------------


async def test_expired_on_hit_is_refused() -> None:
    clock = Clock()
    verifier, keys = counting_verifier(clock=clock, leeway=5)
    token = mint(K_RSA, at(NOW))  # exp = NOW + 300
    assert await verifier.verify(token)
    clock.now = NOW + 304.9  # within the leeway: still a hit
    assert await verifier.verify(token)
    assert keys.asked == 1
    clock.now = NOW + 305
    with pytest.raises(ExpiredToken):
        await verifier.verify(token)
    with pytest.raises(ExpiredToken):
        await verifier.verify(token)


async def test_clock_going_back_before_nbf_is_refused_on_hit() -> None:
    clock = Clock()
    verifier, _ = counting_verifier(clock=clock, leeway=0)
    token = mint(K_RSA, at(NOW, nbf=NOW))
    assert await verifier.verify(token)
    clock.now = NOW - 1
    with pytest.raises(TokenNotYetValid):
        await verifier.verify(token)


@pytest.mark.parametrize("leeway", [0, 5])
async def test_a_hit_refuses_exactly_what_a_full_verification_refuses(leeway: int) -> None:
    clock = Clock()
    cached, _ = counting_verifier(clock=clock, leeway=leeway)
    token = mint(K_RSA, {**at(NOW), "nbf": NOW + 2, "exp": NOW + 20})
    clock.now = NOW + 10
    assert await cached.verify(token)
    for offset in [x / 2 for x in range(-20, 60)]:
        clock.now = NOW + offset
        uncached, _ = counting_verifier(clock=clock, leeway=leeway, cache_ttl=0)
        outcomes = []
        for verifier in (cached, uncached):
            try:
                await verifier.verify(token)
                outcomes.append("ok")
            except InvalidToken as error:
                outcomes.append(type(error).__name__)
        assert outcomes[0] == outcomes[1], (offset, outcomes)
        if outcomes[0] == "ok":
            assert await cached.verify(token)  # cache it again for the next offset


async def test_cache_is_bounded_by_cache_ttl() -> None:
    verifier, keys = counting_verifier()
    assert verifier.cache is not None
    verifier.cache.clock = Clock(0.0)
    token = mint(K_RSA)
    await verifier.verify(token)
    verifier.cache.clock = Clock(300.0)  # the default cache_ttl
    await verifier.verify(token)
    assert keys.asked == 2


async def test_lru_bound_of_the_verifier() -> None:
    verifier, keys = counting_verifier(max_cache_entries=2)
    tokens = [mint(K_RSA, claims(sub=f"user-{i}")) for i in range(3)]
    for token in tokens:
        await verifier.verify(token)
    assert verifier.cache is not None and len(verifier.cache) == 2
    await verifier.verify(tokens[2])
    await verifier.verify(tokens[1])
    assert keys.asked == 3
    await verifier.verify(tokens[0])  # the least recently used was dropped
    assert keys.asked == 4


@pytest.mark.parametrize("options", [{"cache_ttl": 0}, {"max_cache_entries": 0}])
async def test_cache_can_be_turned_off(options: dict[str, int]) -> None:
    verifier, keys = counting_verifier(**options)
    assert verifier.cache is None
    token = mint(K_RSA)
    for _ in range(3):
        assert await verifier.verify(token)
    assert keys.asked == 3


async def test_oversized_tokens_are_not_hashed_or_cached() -> None:
    verifier, _ = counting_verifier(max_token_size=100)
    with pytest.raises(InvalidToken, match="too large"):
        await verifier.verify(mint(K_RSA))
    assert verifier.cache is not None and len(verifier.cache) == 0
