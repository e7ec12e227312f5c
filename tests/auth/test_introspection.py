"""IntrospectionVerifier against a real loopback introspection endpoint (RFC 7662)."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import Any
from urllib.parse import parse_qs

import pytest

from partydeco.auth import (
    InactiveToken,
    IntrospectionUnavailable,
    IntrospectionVerifier,
    MalformedToken,
    MissingClaim,
    TokenTooLarge,
)
from tests.support import eventually
from tests.support.authkit import StubRequest, StubResponse, StubServer

PATH = "/oauth2/introspect"
CLIENT_ID, CLIENT_SECRET = "rooms", "rooms-secret"


class SessionService:
    """An introspection endpoint that knows a few tokens and checks client credentials."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}

    def __call__(self, request: StubRequest) -> StubResponse:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return StubResponse.json({"error": "invalid_client"}, status=401)
        form = parse_qs(request.body.decode())
        token = form.get("token", [""])[0]
        return StubResponse.json(self.sessions.get(token, {"active": False}))


def session(**overrides: Any) -> dict[str, Any]:
    return {"active": True, "sub": "user-7", "exp": int(time.time()) + 300, **overrides}


def make(server: StubServer, **options: Any) -> IntrospectionVerifier:
    return IntrospectionVerifier(
        server.url(PATH), client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **options
    )


async def test_active_token_accepted_with_client_authentication() -> None:
    service = SessionService()
    service.sessions["tok-good"] = session(scope="rooms")
    async with StubServer() as server:
        server.route(PATH, service)
        claims = await make(server).verify("tok-good")
        assert claims["sub"] == "user-7"
        assert claims["scope"] == "rooms"
        form = parse_qs(server.requests[0].body.decode())
        assert form == {"token": ["tok-good"], "token_type_hint": ["access_token"]}
        assert server.requests[0].method == "POST"


async def test_active_result_cached_and_shared() -> None:
    service = SessionService()
    service.sessions["tok-good"] = session()
    async with StubServer() as server:
        server.route(PATH, service)
        verifier = make(server)
        results = await asyncio.gather(*(verifier.verify("tok-good") for _ in range(50)))
        assert {r["sub"] for r in results} == {"user-7"}
        await verifier.verify("tok-good")
        assert server.hits(PATH) == 1


async def test_cache_never_outlives_exp() -> None:
    service = SessionService()
    service.sessions["tok-short"] = session(exp=time.time() + 1.0)
    async with StubServer() as server:
        server.route(PATH, service)
        verifier = make(server, cache_ttl=60)
        assert await verifier.verify("tok-short")

        async def refused() -> bool:
            try:
                await verifier.verify("tok-short")
            except InactiveToken:
                return True
            return False

        await eventually(refused)
        assert server.hits(PATH) >= 2


async def test_cache_ttl_zero_asks_every_time() -> None:
    service = SessionService()
    service.sessions["tok-good"] = session()
    async with StubServer() as server:
        server.route(PATH, service)
        verifier = make(server, cache_ttl=0)
        await verifier.verify("tok-good")
        await verifier.verify("tok-good")
        assert server.hits(PATH) == 2


async def test_cache_keeps_the_recently_used_answers() -> None:
    service = SessionService()
    for name in ("tok-a", "tok-b", "tok-c"):
        service.sessions[name] = session(sub=name)
    async with StubServer() as server:
        server.route(PATH, service)
        verifier = make(server, max_cache_entries=2)
        for name in ("tok-a", "tok-b", "tok-a", "tok-c"):  # "tok-b" is the least recently used
            assert (await verifier.verify(name))["sub"] == name
        assert server.hits(PATH) == 3
        await verifier.verify("tok-a")
        assert server.hits(PATH) == 3
        await verifier.verify("tok-b")
        assert server.hits(PATH) == 4


async def test_cached_answers_cannot_be_corrupted_by_a_caller() -> None:
    service = SessionService()
    service.sessions["tok-good"] = session(scope=["rooms"], org={"roles": ["member"]})
    async with StubServer() as server:
        server.route(PATH, service)
        verifier = make(server)
        first, shared = await asyncio.gather(
            verifier.verify("tok-good"), verifier.verify("tok-good")
        )
        for mine in (first, shared, await verifier.verify("tok-good")):
            mine["sub"] = "admin"
            mine["scope"].append("admin")
            mine["org"]["roles"].append("owner")
        again = await verifier.verify("tok-good")
        assert (again["sub"], again["scope"], again["org"]) == (
            "user-7",
            ["rooms"],
            {"roles": ["member"]},
        )
        assert server.hits(PATH) == 1


async def test_exp_checked_again_on_every_hit() -> None:
    service = SessionService()
    now = time.time()
    service.sessions["tok-good"] = session(exp=now + 100)
    async with StubServer() as server:
        server.route(PATH, service)
        clock = [now]
        verifier = make(server, cache_ttl=3600, clock=lambda: clock[0])
        await verifier.verify("tok-good")
        clock[0] = now + 99
        await verifier.verify("tok-good")
        assert server.hits(PATH) == 1
        clock[0] = now + 100
        with pytest.raises(InactiveToken, match="expired"):
            await verifier.verify("tok-good")
        assert server.hits(PATH) == 2  # the endpoint was asked again, not the cache believed


async def test_revocation_seen_after_cache_ttl() -> None:
    service = SessionService()
    service.sessions["tok-good"] = session()
    async with StubServer() as server:
        server.route(PATH, service)
        verifier = make(server, cache_ttl=0.2)
        await verifier.verify("tok-good")
        service.sessions["tok-good"] = {"active": False}  # logged out at the IdP

        async def refused() -> bool:
            try:
                await verifier.verify("tok-good")
            except InactiveToken:
                return True
            return False

        await eventually(refused)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"active": False}, InactiveToken),
        ({"active": "true", "sub": "x"}, InactiveToken),
        ({"active": 1, "sub": "x"}, InactiveToken),
        ({"sub": "x"}, InactiveToken),
        ({"active": True, "sub": "x", "exp": int(time.time()) - 5}, InactiveToken),
        ({"active": True, "sub": "x", "exp": "soon"}, IntrospectionUnavailable),
        ({"active": True}, MissingClaim),
        ({"active": True, "sub": ""}, MissingClaim),
    ],
    ids=[
        "inactive",
        "active-string",
        "active-int",
        "active-missing",
        "expired",
        "exp-not-number",
        "sub-missing",
        "sub-empty",
    ],
)
async def test_refused_answers(answer: dict[str, Any], error: type[Exception]) -> None:
    service = SessionService()
    service.sessions["tok"] = answer
    async with StubServer() as server:
        server.route(PATH, service)
        verifier = make(server)
        with pytest.raises(error):
            await verifier.verify("tok")
        with pytest.raises(error):
            await verifier.verify("tok")
        assert server.hits(PATH) == 2  # refusals are not cached


FAILURES = {
    "status-500": StubResponse(500, b"oops"),
    "redirect": StubResponse(302, b"", {"Location": "/elsewhere"}),
    "html": StubResponse(200, b"<html>hi</html>", {"Content-Type": "text/html"}),
    "array": StubResponse.json([{"active": True, "sub": "x"}]),
    "too-large": StubResponse.json({"active": True, "sub": "x", "pad": "y" * 100_000}),
    "hang": StubResponse(hang=True),
}


@pytest.mark.parametrize("failure", [*FAILURES, "down", "wrong-client-secret"])
async def test_endpoint_failures_refuse(failure: str) -> None:
    async with StubServer() as server:
        server.route("/elsewhere", StubResponse.json(session()))
        secret = CLIENT_SECRET
        if failure == "down":
            await server.stop()
        elif failure == "wrong-client-secret":
            service = SessionService()
            service.sessions["tok"] = session()
            server.route(PATH, service)
            secret = "guess"
        else:
            server.route(PATH, FAILURES[failure])
        verifier = IntrospectionVerifier(
            server.url(PATH), client_id=CLIENT_ID, client_secret=secret, timeout=0.3
        )
        async with asyncio.timeout(2):
            with pytest.raises(IntrospectionUnavailable) as caught:
                await verifier.verify("tok")
        assert caught.value.status == 503
        assert server.hits("/elsewhere") == 0


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("", MalformedToken),
        ("a b", MalformedToken),
        ("t\r\nX: y", MalformedToken),
        ("x" * 9000, TokenTooLarge),
    ],
    ids=["empty", "space", "crlf", "oversized"],
)
async def test_bad_tokens_never_sent(token: str, error: type[Exception]) -> None:
    async with StubServer() as server:
        server.route(PATH, SessionService())
        with pytest.raises(error):
            await make(server).verify(token)
        assert server.requests == []


async def test_token_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    token = "tok-secret-value-0123456789"
    async with StubServer() as server:
        server.route(PATH, StubResponse(500, token.encode()))
        with caplog.at_level(logging.DEBUG):
            with pytest.raises(IntrospectionUnavailable) as caught:
                await make(server).verify(token)
    assert token not in caplog.text
    assert token not in str(caught.value)
    assert caplog.records  # the failure itself was logged


def test_repr_hides_secret() -> None:
    verifier = IntrospectionVerifier("https://idp.example/i", client_id="a", client_secret="zzz")
    assert "zzz" not in repr(verifier)
    with pytest.raises(ValueError):
        IntrospectionVerifier("file:///x", client_id="a", client_secret="b")
