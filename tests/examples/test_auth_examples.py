"""The four authentication examples, each run on a real server with real clients."""

from __future__ import annotations

import base64
import runpy
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from partydeco import App, auth
from tests.support import ROOT, eventually, serve, start_process
from tests.support.auth_cases import K_RSA
from tests.support.authkit import (
    AZP,
    StubRequest,
    StubResponse,
    StubServer,
    ask,
    claims,
    jwks,
    mint,
    rsa,
)

EXAMPLES = ROOT / "examples"


@asynccontextmanager
async def run_example(name: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Load ``examples/<name>/app.py`` into a fresh app and serve it; yields (base, globals)."""
    with App() as app:
        namespace = runpy.run_path(str(EXAMPLES / name / "app.py"), run_name="example")
    async with serve(app) as base:
        yield base, namespace


# -- jwks_auth -----------------------------------------------------------------------


async def test_jwks_auth_example(monkeypatch: pytest.MonkeyPatch) -> None:
    async with StubServer() as idp:
        issuer = idp.url("/tenant")
        idp.route(
            "/tenant/.well-known/openid-configuration",
            StubResponse.json({"issuer": issuer, "jwks_uri": idp.url("/tenant/jwks")}),
        )
        idp.route("/tenant/jwks", StubResponse.json(jwks(K_RSA)))
        monkeypatch.setenv("AUTH_ISSUER", issuer)
        monkeypatch.setenv("AUTH_AUTHORIZED_PARTIES", AZP)
        monkeypatch.delenv("AUTH_AUDIENCE", raising=False)
        async with run_example("jwks_auth") as (base, namespace):
            token = mint(K_RSA, claims(iss=issuer))
            opened = await ask(base, "websocket", token, path="/parties/main/r1")
            assert (opened.status, opened.body) == (101, "welcome user-1")
            answer = await ask(base, "http", token, path="/parties/main/r1")
            assert (answer.status, answer.body) == (200, '{"user":"user-1","room":"r1"}')
            assert (await ask(base, "websocket", None, path="/parties/main/r1")).status == 401
            wrong_azp = mint(K_RSA, claims(iss=issuer, azp="https://evil.example"))
            assert (await ask(base, "http", wrong_azp, path="/parties/main/r1")).status == 401

            # the provider rotates its key; the example picks it up after the cooldown
            namespace["verifier"].keys.cooldown = 0.2
            rotated = rsa("rotated")
            idp.route("/tenant/jwks", StubResponse.json(jwks(rotated)))
            fresh = mint(rotated, claims(iss=issuer))

            async def accepted() -> bool:
                got = await ask(base, "websocket", fresh, path="/parties/main/r1")
                return got.status == 101

            await eventually(accepted)
            assert (await ask(base, "websocket", token, path="/parties/main/r1")).status == 401
        assert idp.hits("/tenant/.well-known/openid-configuration") == 1
        assert idp.hits("/tenant/jwks") == 2


# -- own_jwt -------------------------------------------------------------------------

OWN_SECRET = "own-jwt-example-secret-0123456789abcdef"


async def test_own_jwt_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", OWN_SECRET)
    monkeypatch.setenv("DEMO_PASSWORD", "open sesame")
    async with run_example("own_jwt") as (base, namespace):
        login = f"http://{base}/parties/login/default"
        async with httpx.AsyncClient() as client:
            wrong = await client.post(login, json={"username": "ada", "password": "guess"})
            assert wrong.status_code == 401
            assert (await client.post(login, content=b"{nope")).status_code == 400
            reply = await client.post(login, json={"username": "ada", "password": "open sesame"})
            assert reply.status_code == 200
            token = reply.json()["token"]
        opened = await ask(base, "websocket", token, path="/parties/main/lobby")
        assert (opened.status, opened.body) == (101, "welcome ada")

        issuer = namespace["ISSUER"]
        forged = auth.issue_token("someone-elses-secret-0123456789abcdef", "ada", issuer=issuer)
        expired = auth.issue_token(
            OWN_SECRET, "ada", issuer=issuer, clock=lambda: time.time() - 3600
        )
        other_issuer = auth.issue_token(OWN_SECRET, "ada", issuer="another-app")
        for bad in [forged, expired, other_issuer, token[:-4] + "AAAA"]:
            assert (await ask(base, "websocket", bad, path="/parties/main/lobby")).status == 401


def test_own_jwt_example_refuses_to_start_without_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JWT_SECRET", "short")
    with App(), pytest.raises(SystemExit, match="JWT_SECRET"):
        runpy.run_path(str(EXAMPLES / "own_jwt" / "app.py"), run_name="example")


# -- shared_secret -------------------------------------------------------------------

ADMIN_SECRET = "room-admin-secret-value"


async def test_shared_secret_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOM_ADMIN_SECRET", ADMIN_SECRET)
    from websockets.asyncio.client import connect

    async with run_example("shared_secret") as (base, _):
        async with connect(f"ws://{base}/parties/main/ops") as listener:
            assert await listener.recv() == "listening for announcements"
            url = f"http://{base}/parties/main/ops"
            async with httpx.AsyncClient() as client:
                missing = await client.post(url, content=b"x")
                wrong = await client.post(
                    url, content=b"x", headers={"Authorization": "Bearer room-admin-secret-valuX"}
                )
                basic = await client.post(
                    url, content=b"x", headers={"Authorization": f"Basic {ADMIN_SECRET}"}
                )
                right = await client.post(
                    url, content=b"deploy at 5", headers={"Authorization": f"Bearer {ADMIN_SECRET}"}
                )
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"] == 'Bearer realm="partydeco"'
            assert wrong.status_code == 401
            assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
            assert ADMIN_SECRET not in wrong.text
            assert basic.status_code == 401
            assert (right.status_code, right.json()) == (200, {"delivered": 1})
            assert await listener.recv() == "announcement: deploy at 5"


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
async def test_shared_secret_example_unconfigured_refuses(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("ROOM_ADMIN_SECRET", raising=False)
    else:
        monkeypatch.setenv("ROOM_ADMIN_SECRET", value)
    async with run_example("shared_secret") as (base, _):
        async with httpx.AsyncClient() as client:
            url = f"http://{base}/parties/main/ops"
            for headers in [{}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}]:
                headers = {k: v.strip() for k, v in headers.items()}
                answer = await client.post(url, content=b"x", headers=headers)
                assert answer.status_code == 500
                assert "not configured" in answer.text


# -- session_service -----------------------------------------------------------------


class SessionService:
    """A loopback introspection endpoint with client authentication."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}

    def __call__(self, request: StubRequest) -> StubResponse:
        expected = base64.b64encode(b"rooms:rooms-secret").decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return StubResponse.json({"error": "invalid_client"}, status=401)
        token = parse_qs(request.body.decode()).get("token", [""])[0]
        return StubResponse.json(self.sessions.get(token, {"active": False}))


async def test_session_service_example(monkeypatch: pytest.MonkeyPatch) -> None:
    service = SessionService()
    service.sessions["sess-ada"] = {
        "active": True,
        "sub": "ada",
        "scope": "rooms:write",
        "exp": int(time.time()) + 600,
    }
    async with StubServer() as idp:
        idp.route("/introspect", service)
        monkeypatch.setenv("SESSION_INTROSPECTION_URL", idp.url("/introspect"))
        monkeypatch.setenv("SESSION_CLIENT_ID", "rooms")
        monkeypatch.setenv("SESSION_CLIENT_SECRET", "rooms-secret")
        async with run_example("session_service") as (base, _):
            path = "/parties/main/r1"
            opened = await ask(base, "websocket", "sess-ada", {"X-Scope": "admin"}, path=path)
            assert (opened.status, opened.body) == (101, "welcome ada (rooms:write)")
            answer = await ask(base, "http", "sess-ada", path=path)
            assert (answer.status, answer.body) == (200, '{"user":"ada"}')
            assert idp.hits("/introspect") == 1  # the active answer was cached
            refused = await ask(base, "websocket", "sess-unknown", path=path)
            assert refused.status == 401
            assert 'error="invalid_token"' in refused.headers["www-authenticate"]
            await idp.stop()
            down = await ask(base, "websocket", "sess-other", path=path)
            assert down.status == 503


# -- as a user runs them: a real process ---------------------------------------------


async def test_shared_secret_example_as_a_process() -> None:
    server = start_process(
        ["examples/shared_secret/app.py"], env={"ROOM_ADMIN_SECRET": ADMIN_SECRET}
    )
    try:
        url = f"http://{server.base}/parties/main/ops"
        async with httpx.AsyncClient() as client:
            refused = await client.post(url, content=b"x")
            allowed = await client.post(
                url, content=b"x", headers={"Authorization": f"Bearer {ADMIN_SECRET}"}
            )
        assert refused.status_code == 401
        assert allowed.status_code == 200
    finally:
        server.stop()


async def test_own_jwt_example_as_a_process() -> None:
    env = {"JWT_SECRET": OWN_SECRET, "DEMO_PASSWORD": "pw"}
    server = start_process(["examples/own_jwt/app.py"], env=env)
    try:
        async with httpx.AsyncClient() as client:
            reply = await client.post(
                f"http://{server.base}/parties/login/default",
                json={"username": "grace", "password": "pw"},
            )
        token = reply.json()["token"]
        opened = await ask(server.base, "websocket", token, path="/parties/main/lobby")
        assert (opened.status, opened.body) == (101, "welcome grace")
        refused = await ask(server.base, "websocket", token + "x", path="/parties/main/lobby")
        assert refused.status == 401
    finally:
        server.stop()
