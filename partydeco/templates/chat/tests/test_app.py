"""The chat rooms and the page, driven in-process by partydeco's TestClient."""

from __future__ import annotations

import pytest
from partydeco.testing import HandshakeRefusedError, TestClient

from app import party


async def test_presence_and_messages() -> None:
    async with TestClient(party) as client:
        async with client.connect("lobby", query={"token": "alice-token"}) as alice:
            assert await alice.receive_json() == {"type": "presence", "users": ["alice"]}
            async with client.connect("lobby", query={"token": "bob-token"}) as bob:
                both = {"type": "presence", "users": ["alice", "bob"]}
                assert await alice.receive_json() == both
                assert await bob.receive_json() == both
                await bob.send_json({"type": "message", "text": "  hi alice  "})
                said = {"type": "message", "from": "bob", "text": "hi alice"}
                assert await alice.receive_json() == said
                assert await bob.receive_json() == said
            assert await alice.receive_json() == {"type": "presence", "users": ["alice"]}


async def test_a_message_that_is_not_a_chat_message_gets_an_error() -> None:
    async with (
        TestClient(party) as client,
        client.connect("lobby", query={"token": "alice-token"}) as alice,
    ):
        await alice.receive_json()
        await alice.send_json({"type": "message", "text": 42})
        assert (await alice.receive_json())["error"] == "invalid_message"
        await alice.send_json({"type": "message", "text": "still here"})
        assert (await alice.receive_json())["text"] == "still here"


async def test_a_bad_token_is_refused() -> None:
    async with TestClient(party) as client:
        with pytest.raises(HandshakeRefusedError) as refused:
            async with client.connect("lobby", query={"token": "wrong"}):
                pass
        assert (refused.value.status, refused.value.text) == (401, "Unauthorized")
        bad = await client.fetch("lobby", headers={"Authorization": "Bearer wrong"})
        assert bad.status == 401


async def test_who_is_in_a_room_over_http() -> None:
    async with TestClient(party) as client:
        async with client.connect("lobby", query={"token": "bob-token"}) as bob:
            await bob.receive_json()
            response = await client.fetch(
                "lobby", headers={"Authorization": "Bearer alice-token", "X-User-ID": "mallory"}
            )
        assert response.json() == {"room": "lobby", "you": "alice", "users": ["bob"]}


async def test_serves_the_page_and_partysocket() -> None:
    async with TestClient(party) as client:
        page = await client.get("/")
        assert page.status == 200
        assert '<script type="module" src="chat.js">' in page.text
        script = await client.get("/vendor/partysocket/index.js")
        assert script.status == 200
        assert "javascript" in (script.header("content-type") or "")
        assert (await client.get("/../app.py")).status == 404
