"""partydeco.testing.TestClient on a partydeco app: the examples the README shows."""

from __future__ import annotations

import pytest

from partydeco import App, Connection
from partydeco.testing import ClosedByAppError, HandshakeRefusedError, TestClient
from tests.support.party_app import build


async def test_greets_and_broadcasts() -> None:
    async with TestClient(build(App())) as client:
        async with (
            client.connect("lobby", query={"token": "alice-token"}) as alice,
            client.connect("lobby", query={"token": "bob-token"}) as bob,
        ):
            assert await alice.receive() == "Hello alice from party!"
            assert await bob.receive() == "Hello bob from party!"
            await alice.send("hi all")
            assert await bob.receive() == "hi all"
            await bob.send(b"\x01\x02")
            assert await alice.receive_bytes() == b"\x01\x02"


async def test_bad_token_is_refused() -> None:
    async with TestClient(build(App())) as client:
        with pytest.raises(HandshakeRefusedError) as refused:
            async with client.connect("lobby", query={"token": "nope"}):
                pytest.fail("the handshake should have been refused")
        assert refused.value.status == 401
        assert refused.value.text == "Unauthorized"


async def test_unknown_party_is_refused_with_404() -> None:
    async with TestClient(build(App())) as client:
        with pytest.raises(HandshakeRefusedError) as refused:
            async with client.connect("lobby", party="nope"):
                pass
        assert (refused.value.status, refused.value.text) == (404, "Party nope not found")


async def test_room_http_sees_the_connections() -> None:
    async with TestClient(build(App())) as client:
        async with client.connect("lobby", id="a1", query={"token": "alice-token"}):
            response = await client.fetch("lobby", headers={"Authorization": "Bearer bob-token"})
            assert response.status == 200
            assert response.json() == {
                "room": "lobby",
                "userId": "bob",
                "method": "GET",
                "connections": 1,
                "ids": ["a1"],
            }
        after = await client.fetch("lobby", headers={"Authorization": "Bearer bob-token"})
        assert after.json()["connections"] == 0  # leaving the block ran the close handling
        refused = await client.fetch("lobby")
        assert (refused.status, refused.text) == (401, "Unauthorized")


async def test_close_by_the_app_and_on_close_effects() -> None:
    app = build(App())
    closed: list[tuple[str, int]] = []

    @app.party("main").on_close
    def remember(connection: Connection, code: int, reason: str) -> None:
        closed.append((connection.id, code))

    async with TestClient(app) as client:
        async with client.connect("lobby", id="k", query={"token": "alice-token"}) as conn:
            await conn.receive()
            await conn.send("kick")
            with pytest.raises(ClosedByAppError) as kicked:
                await conn.receive()
            assert (kicked.value.code, kicked.value.reason) == (4001, "kicked")
        assert closed == [("k", 4001)]
        async with client.connect("lobby", id="c", query={"token": "alice-token"}) as conn:
            await conn.receive()
            await conn.close(4000)
        assert closed[-1] == ("c", 4000)  # on_close has run when close() returns


async def test_works_with_the_party_object_too() -> None:
    with App() as app:
        build(app)
        from partydeco import party

        async with (
            TestClient(party) as client,
            client.connect("r", query={"token": "bob-token"}) as bob,
        ):
            assert await bob.receive_text() == "Hello bob from party!"
