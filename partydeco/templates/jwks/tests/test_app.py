"""The rooms behind JWT sign-in, against a local issuer (see ``issuer.py``)."""

from __future__ import annotations

import pytest
from joserfc.jwk import RSAKey
from partydeco.testing import HandshakeRefusedError, TestClient

from app import party
from issuer import LocalIssuer


async def test_a_signed_in_user_is_greeted_and_messages_are_relayed(issuer: LocalIssuer) -> None:
    async with (
        TestClient(party) as client,
        client.connect("lobby", query={"token": issuer.token("alice")}) as alice,
        client.connect("lobby", query={"token": issuer.token("bob")}) as bob,
    ):
        assert await alice.receive() == "Hello alice from party!"
        assert await bob.receive() == "Hello bob from party!"
        await alice.send("hi bob")
        assert await bob.receive() == "hi bob"


async def test_http_with_a_bearer_token(issuer: LocalIssuer) -> None:
    async with TestClient(party) as client:
        response = await client.fetch(
            "lobby",
            # A client-sent X-User-ID never survives: the token's "sub" replaces it.
            headers={"Authorization": f"Bearer {issuer.token('alice')}", "X-User-ID": "mallory"},
        )
        assert response.status == 200
        assert response.json() == {"room": "lobby", "you": "alice"}


@pytest.mark.parametrize("kind", ["missing", "garbage", "expired", "other issuer", "forged"])
async def test_a_bad_token_is_refused(issuer: LocalIssuer, kind: str) -> None:
    tokens = {
        "missing": "",
        "garbage": "not-a-jwt",
        "expired": issuer.token("alice", expires_in=-60),
        "other issuer": issuer.token("alice", iss="https://elsewhere.example"),
        "forged": issuer.token(
            "alice", key=RSAKey.generate_key(2048, {"kid": "test-key"}, private=True)
        ),
    }
    async with TestClient(party) as client:
        with pytest.raises(HandshakeRefusedError) as refused:
            async with client.connect("lobby", query={"token": tokens[kind]}):
                pass
        assert refused.value.status == 401
        bearer = {"Authorization": f"Bearer {tokens[kind]}"}
        assert (await client.fetch("lobby", headers=bearer)).status == 401
