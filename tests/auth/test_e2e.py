"""The ready-made hooks end to end: a real Hypercorn server, real WebSocket and HTTP clients.

Every refused token of ``tests/support/auth_cases.py`` is sent both as ``?token=`` on a
WebSocket upgrade and as ``Authorization: Bearer`` on an HTTP request, and must get
401 with a ``WWW-Authenticate: Bearer`` challenge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from websockets.asyncio.client import connect

from partydeco import App, Party, auth
from tests.support import eventually, serve
from tests.support.auth_cases import ACCEPT, K_RSA, POLICY, REJECT, Case, make_verifier
from tests.support.authkit import Answer, StubResponse, StubServer, ask, jwks, mint, rsa

TRANSPORTS = ["websocket", "http"]


def build_app(verifier: auth.TokenVerifier, **hook_options: object) -> App:
    app = App()
    room = Party("main", app)
    room.before_connect(auth.before_connect_hook(verifier, **hook_options))  # type: ignore[arg-type]
    room.before_request(auth.before_request_hook(verifier, **hook_options))  # type: ignore[arg-type]

    @room.on_connect
    async def welcome(connection, ctx):  # type: ignore[no-untyped-def]
        headers = ctx.request.headers
        connection.send(f"user={headers.get('X-User-ID')} role={headers.get('X-Role')}")

    @room.on_request
    async def whoami(request, _room):  # type: ignore[no-untyped-def]
        return {"user": request.headers.get("X-User-ID"), "role": request.headers.get("X-Role")}

    return app


@asynccontextmanager
async def served(verifier: auth.TokenVerifier, **hook_options: object) -> AsyncIterator[str]:
    async with serve(build_app(verifier, **hook_options)) as base:
        yield base


def assert_refused(answer: Answer, token: str, *, invalid: bool = True) -> None:
    assert answer.status == 401, answer
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="partydeco"')
    assert ('error="invalid_token"' in challenge) is invalid
    for piece in [token, *token.split(".")]:
        if len(piece) >= 8:
            assert piece not in answer.body
            assert piece not in challenge


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", REJECT, ids=lambda c: c.id)
async def test_refused_tokens_get_401(case: Case, transport: str) -> None:
    token = case.token()
    async with served(make_verifier()) as base:
        answer = await ask(base, transport, token)
    if case.id == "empty-string":
        assert_refused(answer, token, invalid=False)  # an empty token is no token
    else:
        assert_refused(answer, token)
        assert answer.body.startswith("Unauthorized: ")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", ACCEPT, ids=lambda c: c.id)
async def test_accepted_tokens_reach_the_room(case: Case, transport: str) -> None:
    async with served(make_verifier()) as base:
        answer = await ask(base, transport, case.token())
    if transport == "websocket":
        assert (answer.status, answer.body) == (101, "user=user-1 role=None")
    else:
        assert (answer.status, answer.body) == (200, '{"user":"user-1","role":null}')


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_no_token_gets_a_plain_challenge(transport: str) -> None:
    async with served(make_verifier()) as base:
        answer = await ask(base, transport, None)
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="partydeco"'


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_client_cannot_spoof_forwarded_headers(transport: str) -> None:
    spoof = {"X-User-ID": "admin", "X-Role": "owner"}
    token = mint(K_RSA, {**_claims(), "role": "member"})
    async with served(make_verifier(), forward={"X-User-ID": "sub", "X-Role": "role"}) as base:
        ok = await ask(base, transport, token, spoof)
        no_role = await ask(base, transport, mint(K_RSA), spoof)
        refused = await ask(base, transport, None, spoof)
    if transport == "websocket":
        assert ok.body == "user=user-1 role=member"
        assert no_role.body == "user=user-1 role=None"  # absent claim: header removed, not kept
    else:
        assert ok.body == '{"user":"user-1","role":"member"}'
        assert no_role.body == '{"user":"user-1","role":null}'
    assert refused.status == 401


def test_forward_refuses_one_header_named_twice() -> None:
    twice = {"X-User-ID": "sub", "x-user-id": "email"}
    with pytest.raises(ValueError, match="ignore case"):
        auth.before_request_hook(make_verifier(), forward=twice)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_websocket_and_http_accept_bearer_header(transport: str) -> None:
    async with served(make_verifier()) as base:
        if transport == "websocket":
            url = f"ws://{base}/parties/main/room1"
            headers = {"Authorization": f"Bearer {mint(K_RSA)}"}
            async with connect(url, additional_headers=headers) as ws:
                assert await ws.recv() == "user=user-1 role=None"
        else:
            # the query is not read for HTTP unless asked: URLs end up in logs
            async with httpx.AsyncClient() as client:
                url = f"http://{base}/parties/main/room1?token={mint(K_RSA)}"
                assert (await client.get(url)).status_code == 401


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("parameter", ["jku", "x5u"])
async def test_header_key_urls_not_fetched(transport: str, parameter: str) -> None:
    attacker = rsa("rsa-1")
    async with StubServer() as listener:
        listener.route("/keys", StubResponse.json(jwks(attacker)))
        token = mint(attacker, **{parameter: listener.url("/keys")})
        async with served(make_verifier()) as base:
            answer = await ask(base, transport, token)
        assert_refused(answer, token)
        assert listener.requests == []


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("failure", ["status-500", "redirect", "html", "down"])
async def test_jwks_unavailable_answers_503_quickly(transport: str, failure: str) -> None:
    async with StubServer() as idp:
        idp.route("/elsewhere", StubResponse.json(jwks(K_RSA)))
        responses = {
            "status-500": StubResponse(500, b"oops"),
            "redirect": StubResponse(302, b"", {"Location": "/elsewhere"}),
            "html": StubResponse(200, b"<html></html>", {"Content-Type": "text/html"}),
        }
        if failure == "down":
            await idp.stop()
        else:
            idp.route("/jwks", responses[failure])
        verifier = auth.JWTVerifier.from_jwks_url(idp.url("/jwks"), timeout=1.0, **POLICY)
        async with served(verifier) as base:
            started = time.monotonic()
            answer = await ask(base, transport, mint(K_RSA))
            assert time.monotonic() - started < 3
        assert answer.status == 503
        assert "signing keys unavailable" in answer.body
        assert idp.hits("/elsewhere") == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_rotation_through_a_real_server(transport: str) -> None:
    old, new = rsa("old"), rsa("new")
    # minted up front: signing on a busy machine must not eat into the cooldown
    old_token, new_token = mint(old), mint(new)
    async with StubServer() as idp:
        idp.route("/jwks", StubResponse.json(jwks(old)))
        verifier = auth.JWTVerifier.from_jwks_url(idp.url("/jwks"), cooldown=1.0, **POLICY)
        async with served(verifier) as base:
            assert (await ask(base, transport, old_token)).status in (101, 200)
            idp.route("/jwks", StubResponse.json(jwks(new)))
            assert (await ask(base, transport, new_token)).status == 401  # within cooldown

            async def accepted() -> bool:
                return (await ask(base, transport, new_token)).status in (101, 200)

            await eventually(accepted, message="rotated key never accepted")
            assert (await ask(base, transport, old_token)).status == 401
        assert idp.hits("/jwks") == 2


async def test_access_log_keeps_tokens_out(caplog: pytest.LogCaptureFixture) -> None:
    token = mint(K_RSA)
    with caplog.at_level(logging.INFO, logger="partydeco.access"):
        async with served(make_verifier()) as base:
            assert (await ask(base, "websocket", token)).status == 101
            assert (await ask(base, "http", token)).status == 200
            bad = await ask(base, "websocket", "not-a-token-but-secret-looking")
            assert bad.status == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "partydeco.access"]
    assert sum("/parties/main/room1" in line for line in lines) >= 3, lines
    for line in lines:
        assert "token" not in line
        assert token.split(".")[1] not in line
        assert "secret-looking" not in line
        assert "Bearer" not in line


def _claims() -> dict[str, object]:
    from tests.support.authkit import claims

    return claims()
