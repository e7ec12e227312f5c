"""The app's rooms, driven in-process by partydeco's TestClient: no server, no network."""

from __future__ import annotations

import pytest
from partydeco.testing import HandshakeRefusedError, TestClient

from app import party


async def test_greets_each_user_and_relays_messages_to_the_others() -> None:
    async with (
        TestClient(party) as client,
        client.connect("lobby", query={"token": "alice-token"}) as alice,
        client.connect("lobby", query={"token": "bob-token"}) as bob,
    ):
        assert await alice.receive() == "Hello alice from party!"
        assert await bob.receive() == "Hello bob from party!"
        await alice.send("hi bob")
        assert await bob.receive() == "hi bob"
        await bob.send("hi alice")
        assert await alice.receive() == "hi alice"  # not her own "hi bob" first


@pytest.mark.parametrize("query", [{"token": "wrong"}, {}])
async def test_a_bad_or_missing_token_is_refused(query: dict[str, str]) -> None:
    async with TestClient(party) as client:
        with pytest.raises(HandshakeRefusedError) as refused:
            async with client.connect("lobby", query=query):
                pass
        assert (refused.value.status, refused.value.text) == (401, "Unauthorized")
        assert (await client.fetch("lobby")).status == 401
        assert (await client.fetch("lobby", query={"token": "alice-token"})).status == 401


async def test_a_room_over_http_knows_who_asks() -> None:
    async with TestClient(party) as client:
        async with client.connect("lobby", query={"token": "bob-token"}) as bob:
            await bob.receive()
            response = await client.fetch(
                "lobby",
                # A client-sent X-User-ID is replaced by the user the token belongs to.
                headers={"Authorization": "Bearer alice-token", "X-User-ID": "mallory"},
            )
        assert response.status == 200
        assert response.json() == {"room": "lobby", "you": "alice", "connections": 1}
