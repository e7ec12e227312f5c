"""The Python PartySocket against a real partydeco app on Hypercorn."""

from __future__ import annotations

import asyncio

import pytest

from partydeco import App
from partydeco.client import (
    Backoff,
    ClosedByServerError,
    CloseInfo,
    HandshakeRejectedError,
    PartySocket,
)
from tests.support import serve
from tests.support.client_server import free_port, serve_app_on
from tests.support.party_app import build

# Hypercorn's ping task outlives a closed WebSocket by up to one interval, which holds up the
# server's shutdown; the tests do not need pings.
NO_PINGS = {"websocket_ping_interval": None}
FAST = Backoff(min_delay=0.02, max_delay=0.1, factor=2, jitter=0.5)


async def test_greeting_broadcast_and_binary() -> None:
    async with serve(build(App()), **NO_PINGS) as host:
        alice = PartySocket(host, "lobby", query={"token": "alice-token"}, backoff=FAST)
        bob = PartySocket(host, "lobby", query=lambda: {"token": "bob-token"}, backoff=FAST)
        async with alice, bob:
            assert await alice.recv() == "Hello alice from party!"
            assert await bob.recv() == "Hello bob from party!"
            await alice.send("hi bob")
            await alice.send(b"\x00\x01\x02")
            assert await bob.recv() == "hi bob"
            assert await bob.recv() == b"\x00\x01\x02"
            response = await PartySocket.fetch(
                host, "lobby", headers={"Authorization": "Bearer bob-token"}
            )
            assert response.status_code == 200
            assert response.json()["ids"] == sorted([alice.id, bob.id])
            assert response.json()["userId"] == "bob"


async def test_bad_token_refused_at_handshake_without_retrying() -> None:
    async with serve(build(App()), **NO_PINGS) as host:
        socket = PartySocket(host, "lobby", query={"token": "nope"}, backoff=FAST)
        with pytest.raises(HandshakeRejectedError) as refused:
            await socket.wait_open()
        assert (refused.value.status, refused.value.body) == (401, b"Unauthorized")
        assert refused.value.attempts == 1
        await socket.close()


async def test_fetch_without_authorization_is_refused() -> None:
    async with serve(build(App()), **NO_PINGS) as host:
        response = await PartySocket.fetch(host, "lobby")
        assert (response.status_code, response.text) == (401, "Unauthorized")


async def test_application_close_code_stops_the_client() -> None:
    async with serve(build(App()), **NO_PINGS) as host:
        socket = PartySocket(host, "lobby", query={"token": "alice-token"}, backoff=FAST)
        assert await socket.recv() == "Hello alice from party!"
        await socket.send("kick")
        with pytest.raises(ClosedByServerError) as closed:
            await socket.recv()
        assert (closed.value.code, closed.value.reason) == (4001, "kicked")
        await socket.close()


async def test_reconnects_with_the_same_id_after_a_server_restart() -> None:
    port = free_port()
    lost = asyncio.Event()
    closes: list[CloseInfo] = []

    def on_close(info: CloseInfo) -> None:
        closes.append(info)
        lost.set()

    socket = PartySocket(
        f"127.0.0.1:{port}",
        "lobby",
        query={"token": "alice-token"},
        backoff=FAST,
        on_close=on_close,
    )
    async with serve_app_on(build(App()), port):
        assert await socket.recv() == "Hello alice from party!"
    # the server shut down gracefully: the client saw 1001 and keeps trying
    async with asyncio.timeout(5):
        await lost.wait()
    assert closes[0] == CloseInfo(code=1001, reason="server shutting down")
    await socket.send("while offline")
    async with serve_app_on(build(App()), port) as host:
        async with asyncio.timeout(5):
            assert await socket.recv() == "Hello alice from party!"
        response = await PartySocket.fetch(
            host, "lobby", headers={"Authorization": "Bearer alice-token"}
        )
        assert response.json()["ids"] == [socket.id]
        await socket.close()
