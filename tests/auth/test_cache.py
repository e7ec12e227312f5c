"""The verified-token cache: hits, time checks on every hit, bounds, key rotation, copies.

Time is an input: unit tests give the verifier (wall clock) and the cache (monotonic
clock) clocks they move by hand. Key rotation runs against a real loopback JWKS
server, and one test goes through a real Hypercorn server.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc.jwk import KeySet

from partydeco import App, Party, auth
from partydeco.auth import (
    BadSignature,
    ExpiredToken,
    InvalidToken,
    JWTVerifier,
    KeyNotFound,
    LocalKeys,
    RemoteJWKS,
    TokenCache,
    TokenNotYetValid,
    WrongAudience,
)
from partydeco.auth.cache import ClaimsSnapshot, token_digest
from partydeco.auth.keys import import_jwks
from tests.support import serve
from tests.support.auth_cases import K_EC, K_RSA, POLICY, TRUSTED_JWKS
from tests.support.authkit import StubResponse, StubServer, ask, claims, jwks, mint, rsa, wait_for

NOW = 1_800_000_000


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingKeys(LocalKeys):
    """The trusted local keys, counting how often a verification asks for them."""

    def __init__(self) -> None:
        super().__init__(import_jwks(TRUSTED_JWKS, allow_private=True))
        self.asked = 0

    async def keyset(self, kid: str | None) -> KeySet:
        self.asked += 1
        return await super().keyset(kid)


def counting_verifier(**options: Any) -> tuple[JWTVerifier, CountingKeys]:
    keys = CountingKeys()
    return JWTVerifier(keys, **{**POLICY, **options}), keys


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


# -- key rotation ------------------------------------------------------------------------

JWKS_PATH = "/jwks.json"


def remote(server: StubServer, **options: Any) -> JWTVerifier:
    return JWTVerifier.from_jwks_url(server.url(JWKS_PATH), **{**POLICY, **options})


async def accepted(verifier: JWTVerifier, token: str) -> bool:
    try:
        await verifier.verify(token)
    except InvalidToken:
        return False
    return True


async def test_rotation_that_drops_a_key_invalidates_its_cached_tokens() -> None:
    old, new = rsa("old"), rsa("new")
    async with StubServer() as idp:
        idp.route(JWKS_PATH, StubResponse.json(jwks(old)))
        verifier = remote(idp, cooldown=0.1)
        cached = mint(old)
        assert await verifier.verify(cached)
        idp.route(JWKS_PATH, StubResponse.json(jwks(new)))  # the IdP retires "old"

        async def new_key_in_use() -> bool:
            return await accepted(verifier, mint(new))  # an unknown kid makes it refetch

        await wait_for(new_key_in_use)
        assert verifier.cache is not None
        assert verifier.cache.lookup(token_digest(cached)) is not None  # not yet looked at
        with pytest.raises(KeyNotFound):
            await verifier.verify(cached)
        assert verifier.cache.lookup(token_digest(cached)) is None


async def test_rotation_that_keeps_a_key_keeps_its_cached_tokens() -> None:
    old, new = rsa("old"), rsa("new")
    async with StubServer() as idp:
        idp.route(JWKS_PATH, StubResponse.json(jwks(old)))
        verifier = remote(idp, cooldown=0.1)
        cached = mint(old)
        assert await verifier.verify(cached)
        idp.route(JWKS_PATH, StubResponse.json(jwks(new, old)))  # "new" added, "old" kept
        keys = verifier.keys
        assert isinstance(keys, RemoteJWKS)
        generation = keys.generation

        async def new_key_in_use() -> bool:
            return await accepted(verifier, mint(new))

        await wait_for(new_key_in_use)
        assert keys.generation != generation
        assert verifier.cache is not None
        entry = verifier.cache.lookup(token_digest(cached))
        assert entry is not None  # still cached: its key was never dropped
        assert (await verifier.verify(cached))["sub"] == "user-1"


async def test_a_key_replaced_under_the_same_kid_invalidates_its_tokens() -> None:
    first, second = rsa("k1"), rsa("k1")
    async with StubServer() as idp:
        idp.route(JWKS_PATH, StubResponse.json(jwks(first)))
        verifier = remote(idp, cooldown=0.1)
        cached = mint(first)
        assert await verifier.verify(cached)
        idp.route(JWKS_PATH, StubResponse.json(jwks(second, rsa("other"))))

        async def refetched() -> bool:
            await accepted(verifier, mint(rsa("unknown")))  # an unknown kid makes it refetch
            return idp.hits(JWKS_PATH) >= 2

        await wait_for(refetched)
        with pytest.raises(BadSignature):
            await verifier.verify(cached)


async def test_reused_token_alone_sees_its_key_dropped_after_max_age() -> None:
    # no other token ever arrives: the hits themselves must let the key set refresh
    old, new = rsa("old"), rsa("new")
    async with StubServer() as idp:
        idp.route(JWKS_PATH, StubResponse.json(jwks(old)))
        verifier = remote(idp, max_age=0.3, cooldown=0.1)
        token = mint(old)
        assert await verifier.verify(token)
        idp.route(JWKS_PATH, StubResponse.json(jwks(new)))

        async def refused() -> bool:
            return not await accepted(verifier, token)

        await wait_for(refused)
        with pytest.raises(KeyNotFound):
            await verifier.verify(token)


async def test_an_unchanged_refetch_keeps_the_generation() -> None:
    async with StubServer() as idp:
        idp.route(JWKS_PATH, StubResponse.json(jwks(K_RSA, K_EC)))
        keys = RemoteJWKS(idp.url(JWKS_PATH), max_age=0.05, cooldown=0.0)
        first = await keys.keyset(None)
        generation = keys.generation

        async def refetched() -> bool:
            await keys.keyset(None)
            return idp.hits(JWKS_PATH) >= 3

        await wait_for(refetched)
        assert keys.generation == generation
        again = await keys.keyset(None)
        assert all(keys.holds(key) for key in first.keys)
        assert [id(key) for key in again.keys] == [id(key) for key in first.keys]


# -- end to end --------------------------------------------------------------------------


async def test_reused_token_through_a_real_server_until_it_expires() -> None:
    verifier, keys = counting_verifier(leeway=0)
    app = App()
    room = Party("main", app)
    room.before_connect(auth.before_connect_hook(verifier))
    room.before_request(auth.before_request_hook(verifier))

    @room.on_connect
    async def welcome(connection, ctx):  # type: ignore[no-untyped-def]
        connection.send(f"user={ctx.request.headers.get('X-User-ID')}")

    @room.on_request
    async def whoami(request, _room):  # type: ignore[no-untyped-def]
        return {"user": request.headers.get("X-User-ID")}

    async with serve(app) as base:
        short = mint(K_RSA, claims(exp=int(time.time()) + 3))  # valid for 2 to 3 s
        for transport in ("websocket", "http", "websocket", "http"):
            answer = await ask(base, transport, short)
            assert answer.status in (101, 200), answer
            assert "user-1" in answer.body
        assert keys.asked == 1  # one full verification served all four

        async def expired() -> bool:
            return (await ask(base, "websocket", short)).status == 401

        await wait_for(expired, within=10)
        for transport in ("websocket", "http"):
            answer = await ask(base, transport, short)
            assert answer.status == 401
            assert "token expired" in answer.body
        assert (await ask(base, "http", mint(K_RSA))).status == 200  # others still get in
