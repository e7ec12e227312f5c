"""The counter rooms, driven in-process by partydeco's TestClient."""

from __future__ import annotations

import asyncio

import pytest
from partydeco.testing import HandshakeRefusedError, TestClient

import app
from app import party

ALICE = {"Authorization": "Bearer alice-token"}


async def test_counts_over_websockets_and_http() -> None:
    async with (
        TestClient(party) as client,
        client.connect("home", query={"token": "alice-token"}) as alice,
        client.connect("home", query={"token": "bob-token"}) as bob,
    ):
        assert await alice.receive_json() == {"count": 0}
        assert await bob.receive_json() == {"count": 0}
        await alice.send("increment")
        assert await alice.receive_json() == {"count": 1}
        assert await bob.receive_json() == {"count": 1}
        posted = await client.fetch("home", method="POST", headers=ALICE)
        assert posted.json() == {"count": 2}
        assert await bob.receive_json() == {"count": 2}
        assert (await client.fetch("home", headers=ALICE)).json() == {"count": 2}
        assert (await client.fetch("other", headers=ALICE)).json() == {"count": 0}


async def test_concurrent_increments_are_all_counted() -> None:
    async with TestClient(party) as client:
        posts = [client.fetch("busy", method="POST", headers=ALICE) for _ in range(10)]
        counts = sorted(r.json()["count"] for r in await asyncio.gather(*posts))
        assert counts == list(range(1, 11))


async def test_the_alarm_resets_the_count_after_a_quiet_spell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app, "RESET_AFTER", 0.2)
    async with (
        TestClient(party) as client,
        client.connect("quiet", query={"token": "alice-token"}) as alice,
    ):
        assert await alice.receive_json() == {"count": 0}
        await alice.send("increment")
        assert await alice.receive_json() == {"count": 1}
        assert await alice.receive_json() == {"count": 0}  # the alarm, within the timeout
        assert (await client.fetch("quiet", headers=ALICE)).json() == {"count": 0}


async def test_a_bad_token_is_refused() -> None:
    async with TestClient(party) as client:
        with pytest.raises(HandshakeRefusedError) as refused:
            async with client.connect("home", query={"token": "wrong"}):
                pass
        assert refused.value.status == 401
        assert (await client.fetch("home", method="POST")).status == 401
