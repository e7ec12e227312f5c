"""The verified-token cache against key rotation (a real loopback JWKS server), and end to end
through a real Hypercorn server with real WebSocket and HTTP clients."""

from __future__ import annotations

import time
from typing import Any

import pytest

from partydeco import App, Party, auth
from partydeco.auth import BadSignature, InvalidToken, JWTVerifier, KeyNotFound, RemoteJWKS
from partydeco.auth.cache import token_digest
from tests.support import eventually, serve
from tests.support.auth_cases import K_EC, K_RSA, POLICY
from tests.support.authkit import StubResponse, StubServer, ask, claims, jwks, mint, rsa
from tests.support.token_cache import counting_verifier

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

        await eventually(new_key_in_use)
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

        await eventually(new_key_in_use)
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

        await eventually(refetched)
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

        await eventually(refused)
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

        await eventually(refetched)
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

        await eventually(expired, timeout=10)
        for transport in ("websocket", "http"):
            answer = await ask(base, transport, short)
            assert answer.status == 401
            assert "token expired" in answer.body
        assert (await ask(base, "http", mint(K_RSA))).status == 200  # others still get in
