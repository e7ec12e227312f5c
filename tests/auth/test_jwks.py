"""RemoteJWKS against a real loopback HTTP server: single flight, cooldown, rotation,
failure modes, discovery, and the fetch limits."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import pytest

from partydeco.auth import (
    InvalidToken,
    JWKSUnavailable,
    JWTVerifier,
    KeyNotFound,
    RemoteJWKS,
)
from tests.support import eventually
from tests.support.auth_cases import K_EC, K_RSA, POLICY
from tests.support.authkit import (
    StubResponse,
    StubServer,
    claims,
    jwks,
    mint,
    rsa,
)

JWKS_PATH = "/jwks.json"


def remote_verifier(server: StubServer, **options: Any) -> JWTVerifier:
    return JWTVerifier.from_jwks_url(server.url(JWKS_PATH), **{**POLICY, **options})


async def test_cold_cache_concurrent_verifications_fetch_once() -> None:
    async with StubServer() as server:
        # the delay keeps the fetch in flight while all 100 verifications arrive
        server.route(JWKS_PATH, StubResponse.json(jwks(K_RSA, K_EC), delay=0.1))
        verifier = remote_verifier(server)
        token = mint(K_RSA)
        results = await asyncio.gather(*(verifier.verify(token) for _ in range(100)))
        assert all(result["sub"] == "user-1" for result in results)
        assert server.hits(JWKS_PATH) == 1


async def test_random_kids_within_cooldown_cause_no_fetch() -> None:
    async with StubServer() as server:
        server.route(JWKS_PATH, StubResponse.json(jwks(K_RSA)))
        verifier = remote_verifier(server, cooldown=60.0)
        assert await verifier.verify(mint(K_RSA))
        assert server.hits(JWKS_PATH) == 1
        strangers = [mint(K_RSA, kid=secrets.token_hex(8)) for _ in range(1000)]
        outcomes = await asyncio.gather(
            *(verifier.verify(token) for token in strangers), return_exceptions=True
        )
        assert all(isinstance(outcome, KeyNotFound) for outcome in outcomes)
        assert server.hits(JWKS_PATH) == 1


async def test_unknown_kid_after_cooldown_refetches_once() -> None:
    async with StubServer() as server:
        server.route(JWKS_PATH, StubResponse.json(jwks(K_RSA)))
        verifier = remote_verifier(server, cooldown=1.0)
        # minted up front: signing is slow on a busy machine, verifying an unknown kid is not
        burst = [mint(K_RSA, kid=secrets.token_hex(8)) for _ in range(50)]
        stranger = mint(K_RSA, kid=secrets.token_hex(8))
        started = time.monotonic()  # before the first fetch, which starts the cooldown
        assert await verifier.verify(mint(K_RSA))

        async def refetched() -> bool:
            with pytest.raises(KeyNotFound):
                await verifier.verify(stranger)
            return server.hits(JWKS_PATH) == 2

        await eventually(refetched)
        assert time.monotonic() - started >= 1.0
        # a burst right after the refetch is inside the new cooldown
        for token in burst:
            with pytest.raises(KeyNotFound):
                await verifier.verify(token)
        assert server.hits(JWKS_PATH) == 2


async def test_key_rotation_picked_up_after_cooldown() -> None:
    old, new = rsa("old"), rsa("new")
    async with StubServer() as server:
        server.route(JWKS_PATH, StubResponse.json(jwks(old)))
        verifier = remote_verifier(server, cooldown=0.3)
        assert await verifier.verify(mint(old))
        server.route(JWKS_PATH, StubResponse.json(jwks(new)))  # the IdP rotates
        with pytest.raises(KeyNotFound):
            await verifier.verify(mint(new))  # within the cooldown: no refetch yet
        assert server.hits(JWKS_PATH) == 1

        async def new_key_accepted() -> bool:
            try:
                await verifier.verify(mint(new))
            except KeyNotFound:
                return False
            return True

        await eventually(new_key_accepted)
        assert server.hits(JWKS_PATH) == 2
        with pytest.raises(KeyNotFound):
            await verifier.verify(mint(old))  # the retired key is gone


async def test_max_age_refetches() -> None:
    async with StubServer() as server:
        server.route(JWKS_PATH, StubResponse.json(jwks(K_RSA)))
        verifier = remote_verifier(server, max_age=0.2, cooldown=0.1)
        token = mint(K_RSA)
        assert await verifier.verify(token)

        async def refetched() -> bool:
            await verifier.verify(token)
            return server.hits(JWKS_PATH) >= 2

        await eventually(refetched)


FAILURES: dict[str, StubResponse] = {
    "status-500": StubResponse(500, b"oops"),
    "redirect-302": StubResponse(302, b"", {"Location": "/elsewhere.json"}),
    "status-203-with-keys": StubResponse(203, json.dumps(jwks(K_RSA)).encode()),
    "html": StubResponse(200, b"<html><body>login</body></html>", {"Content-Type": "text/html"}),
    "not-a-jwks": StubResponse.json({"hello": "world"}),
    "only-private-keys": StubResponse.json({"keys": [K_RSA.as_dict(private=True)]}),
    "too-large": StubResponse.json({"keys": [K_RSA.as_dict(private=False)], "pad": "x" * 300_000}),
    "too-large-chunked": StubResponse(
        200, json.dumps({**jwks(K_RSA), "pad": "x" * 300_000}).encode(), chunked=True
    ),
    "slow": StubResponse.json(jwks(K_RSA), delay=5.0),
}


@pytest.mark.parametrize("failure", [*FAILURES, "down"])
async def test_failed_refetch_keeps_cached_keys(failure: str) -> None:
    async with StubServer() as server:
        server.route(JWKS_PATH, StubResponse.json(jwks(K_RSA)))
        server.route("/elsewhere.json", StubResponse.json(jwks(K_RSA, rsa("x"))))
        verifier = remote_verifier(server, cooldown=0.05, timeout=1.5)
        token = mint(K_RSA)
        assert await verifier.verify(token)
        if failure == "down":
            await server.stop()
        else:
            server.route(JWKS_PATH, FAILURES[failure])

        async def refetch_attempted() -> bool:
            with pytest.raises(KeyNotFound):
                await verifier.verify(mint(K_RSA, kid=secrets.token_hex(8)))
            return failure == "down" or server.hits(JWKS_PATH) >= 2

        await eventually(refetch_attempted)
        assert (await verifier.verify(token))["sub"] == "user-1"
        assert server.hits("/elsewhere.json") == 0  # the redirect was not followed


@pytest.mark.parametrize("failure", [*FAILURES, "down"])
async def test_no_cached_keys_fails_fast_and_clearly(failure: str) -> None:
    async with StubServer() as server:
        if failure == "down":
            await server.stop()
        else:
            server.route(JWKS_PATH, FAILURES[failure])
        server.route("/elsewhere.json", StubResponse.json(jwks(K_RSA)))
        verifier = remote_verifier(server, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(JWKSUnavailable) as caught:
            await verifier.verify(mint(K_RSA))
        assert time.monotonic() - started < 2.0
        assert caught.value.status == 503
        assert server.hits("/elsewhere.json") == 0


async def test_declared_oversize_body_refused_without_reading() -> None:
    async with StubServer() as server:
        # claims 10 MB, sends a valid JWKS, then stalls: the Content-Length alone must refuse it
        body = json.dumps(jwks(K_RSA)).encode()
        server.route(JWKS_PATH, StubResponse(200, body, declared_length=10_000_000))
        verifier = remote_verifier(server, timeout=5.0)
        async with asyncio.timeout(1.0):
            with pytest.raises(JWKSUnavailable):
                await verifier.verify(mint(K_RSA))


async def test_dead_endpoint_is_not_hammered() -> None:
    async with StubServer() as server:
        server.route(JWKS_PATH, StubResponse(500, b"down"))
        verifier = remote_verifier(server, timeout=0.3)
        for _ in range(200):
            with pytest.raises(JWKSUnavailable):
                await verifier.verify(mint(K_RSA))
        assert server.hits(JWKS_PATH) == 1


async def test_cold_fetch_failure_retried_later() -> None:
    async with StubServer() as server:
        server.route(JWKS_PATH, StubResponse(500, b"down"))
        verifier = remote_verifier(server, cooldown=0.1)
        token = mint(K_RSA)
        with pytest.raises(JWKSUnavailable):
            await verifier.verify(token)
        server.route(JWKS_PATH, StubResponse.json(jwks(K_RSA)))

        async def recovered() -> bool:
            try:
                await verifier.verify(token)
            except JWKSUnavailable:
                return False
            return True

        await eventually(recovered)


async def test_hanging_endpoint_times_out() -> None:
    async with StubServer() as server:
        server.route(JWKS_PATH, StubResponse(hang=True))
        verifier = remote_verifier(server, timeout=0.2)
        async with asyncio.timeout(2):
            with pytest.raises(JWKSUnavailable):
                await verifier.verify(mint(K_RSA))


async def test_remote_jwks_ignores_private_and_symmetric_keys() -> None:
    leaked = rsa("leaked")
    async with StubServer() as server:
        document = {
            "keys": [
                leaked.as_dict(private=True),
                {"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},
                K_RSA.as_dict(private=False),
            ]
        }
        server.route(JWKS_PATH, StubResponse.json(document))
        verifier = remote_verifier(server)
        assert await verifier.verify(mint(K_RSA))
        with pytest.raises(KeyNotFound):
            await verifier.verify(mint(leaked))


def test_only_http_urls() -> None:
    for url in ["file:///etc/passwd", "ftp://idp.example/jwks", "gopher://x", "/relative"]:
        with pytest.raises(ValueError, match="http"):
            RemoteJWKS(url)
    with pytest.raises(ValueError, match="http"):
        RemoteJWKS.from_issuer("file:///etc")


async def test_openid_discovery() -> None:
    async with StubServer() as server:
        issuer = server.url("/tenant")
        server.route(
            "/tenant/.well-known/openid-configuration",
            StubResponse.json({"issuer": issuer, "jwks_uri": server.url(JWKS_PATH)}),
        )
        server.route(JWKS_PATH, StubResponse.json(jwks(K_RSA)))
        verifier = JWTVerifier.from_issuer(issuer, audience=POLICY["audience"])
        assert await verifier.verify(mint(K_RSA, claims(iss=issuer)))
        # the issuer given to from_issuer is enforced
        with pytest.raises(InvalidToken):
            await verifier.verify(mint(K_RSA))
        assert server.hits("/tenant/.well-known/openid-configuration") == 1


@pytest.mark.parametrize(
    "document",
    [
        {"issuer": "https://someone-else.example", "jwks_uri": "JWKS"},
        {"issuer": "ISSUER", "jwks_uri": "file:///etc/passwd"},
        {"issuer": "ISSUER"},
    ],
    ids=["issuer-mismatch", "jwks-uri-not-http", "no-jwks-uri"],
)
async def test_discovery_refuses_bad_documents(document: dict[str, str]) -> None:
    async with StubServer() as server:
        issuer = server.url("/tenant")
        replaced = {
            k: {"JWKS": server.url(JWKS_PATH), "ISSUER": issuer}.get(v, v)
            for k, v in document.items()
        }
        server.route("/tenant/.well-known/openid-configuration", StubResponse.json(replaced))
        server.route(JWKS_PATH, StubResponse.json(jwks(K_RSA)))
        verifier = JWTVerifier.from_issuer(issuer, audience=POLICY["audience"])
        with pytest.raises(JWKSUnavailable):
            await verifier.verify(mint(K_RSA, claims(iss=issuer)))
        assert server.hits(JWKS_PATH) == 0


@pytest.mark.parametrize("parameter", ["jku", "x5u"])
async def test_header_key_urls_are_never_fetched(parameter: str) -> None:
    attacker = rsa("rsa-1")
    async with StubServer() as idp, StubServer() as listener:
        idp.route(JWKS_PATH, StubResponse.json(jwks(K_RSA)))
        listener.route("/keys", StubResponse.json(jwks(attacker)))
        verifier = remote_verifier(idp, cooldown=0.0)
        token = mint(attacker, **{parameter: listener.url("/keys")})
        with pytest.raises(InvalidToken):
            await verifier.verify(token)
        token = mint(rsa("attacker-kid"), **{parameter: listener.url("/keys")})
        with pytest.raises(InvalidToken):
            await verifier.verify(token)
        assert listener.requests == []
