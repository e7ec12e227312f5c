"""partydeco.testing against a plain ASGI app: the client itself, independent of the core."""

from __future__ import annotations

from typing import Any

import pytest

from partydeco.testing import ClosedByAppError, HandshakeRefusedError, TestClient
from tests.support.client_server import PartyEchoApp


async def test_connect_send_receive_and_broadcast() -> None:
    app = PartyEchoApp()
    async with TestClient(app) as client:
        async with (
            client.connect("r", id="a", query={"token": "good"}) as a,
            client.connect("r", id="b", query={"token": "good"}) as b,
        ):
            assert a.id == "a"
            assert await a.receive() == "hello a"
            assert await b.receive_text() == "hello b"
            await a.send("to everyone")
            assert await b.receive() == "to everyone"
            await a.send(b"\x00\xff")
            assert await a.receive_bytes() == b"\x00\xff"
        assert app.seen.connects == [
            ("a", {"_pk": "a", "token": "good"}),
            ("b", {"_pk": "b", "token": "good"}),
        ]
        # leaving the block waited for the app to finish each connection
        assert sorted(pk for pk, _ in app.seen.disconnects) == ["a", "b"]


async def test_handshake_refusal_status_and_body() -> None:
    async with TestClient(PartyEchoApp()) as client:
        with pytest.raises(HandshakeRefusedError) as refused:
            async with client.connect("r", query={"token": "bad"}):
                pytest.fail("the handshake should have been refused")
        assert refused.value.status == 401
        assert refused.value.text == "Unauthorized"
        assert ("content-type", "text/plain") in refused.value.headers


async def test_app_close_is_reported_with_code_and_reason() -> None:
    async with (
        TestClient(PartyEchoApp()) as client,
        client.connect("r", query={"token": "good"}) as conn,
    ):
        await conn.receive()
        await conn.send("close:4001")
        with pytest.raises(ClosedByAppError) as closed:
            await conn.receive()
        assert (closed.value.code, closed.value.reason) == (4001, "bye")
        assert await conn.wait_closed() == (4001, "bye")


async def test_waiting_for_a_message_that_never_comes_times_out() -> None:
    async with (
        TestClient(PartyEchoApp(), timeout=0.2) as client,
        client.connect("r", query={"token": "good"}) as conn,
    ):
        await conn.receive()
        with pytest.raises(TimeoutError):
            await conn.receive()


async def test_http_request_to_a_room() -> None:
    async with TestClient(PartyEchoApp()) as client:
        response = await client.fetch(
            "my room",
            party="chat",
            path="stats",
            method="POST",
            query={"token": "t"},
            headers={"Authorization": "Bearer x"},
            json={"a": 1},
        )
        assert response.status == 200
        assert response.header("Content-Type") == "application/json"
        body: dict[str, Any] = response.json()
        assert body == {
            "method": "POST",
            "path": "/parties/chat/my room/stats",
            "query": {"token": "t"},
            "authorization": "Bearer x",
            "body": '{"a": 1}',
        }
        missing = await client.get("/elsewhere")
        assert (missing.status, missing.text) == (404, "Not found")


async def test_app_crash_surfaces_in_the_test() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan here")
        raise ValueError("handler exploded")

    async with TestClient(broken) as client:
        with pytest.raises(ValueError, match="handler exploded"):
            await client.get("/x")
        with pytest.raises(ValueError, match="handler exploded"):
            async with client.connect("r"):
                pass
