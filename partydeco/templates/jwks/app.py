"""Rooms for users signed in with an identity provider (Clerk, Auth0, Keycloak, ...).

The provider's JWTs are verified against its published keys (JWKS), found by OpenID
discovery from the issuer URL, and the token's ``sub`` reaches the room as ``X-User-ID``.
A WebSocket carries the token in ``?token=`` (browsers cannot put headers on one), an
HTTP request in ``Authorization: Bearer``. Settings (the environment or a ``.env`` file):

- ``AUTH_ISSUER``: the tokens' ``iss``, e.g. ``https://your-tenant.clerk.accounts.dev``;
- ``AUTH_AUDIENCE``: the ``aud`` to require (optional);
- ``AUTH_AUTHORIZED_PARTIES``: the ``azp`` values to accept, comma-separated (optional;
  Clerk puts your site's origin there).
"""

from __future__ import annotations

from typing import Any

from partydeco import ConnectContext, Connection, Request, Room, auth, party
from partydeco.env import load_env

__all__ = ["party"]  # what `hypercorn app:party` serves

env = load_env()  # the environment over .env, as rooms see it
issuer = env.get("AUTH_ISSUER", "")
if not issuer:
    raise RuntimeError(
        "AUTH_ISSUER is not set: give your identity provider's issuer URL, in the "
        "environment or in .env (see .env.example)"
    )

verifier = auth.JWTVerifier.from_issuer(
    issuer,
    audience=env.get("AUTH_AUDIENCE") or None,
    authorized_parties=[p for p in env.get("AUTH_AUTHORIZED_PARTIES", "").split(",") if p] or None,
)

# Refused without a token or with a bad one (401), or when the keys cannot be fetched
# (503). Both hooks remove any X-User-ID the client sent before setting it from "sub".
party.before_connect(auth.before_connect_hook(verifier))
party.before_request(auth.before_request_hook(verifier))


@party.on_connect
async def greet(connection: Connection, ctx: ConnectContext) -> None:
    connection.send(f"Hello {ctx.request.headers['X-User-ID']} from party!")


@party.on_message
async def relay(message: str | bytes, sender: Connection) -> None:
    sender.room.broadcast(message, without=[sender.id])


@party.on_request
async def whoami(request: Request, room: Room) -> dict[str, Any]:
    return {"room": room.id, "you": request.headers["X-User-ID"]}


if __name__ == "__main__":
    party.run()  # $HOST:$PORT, by default 127.0.0.1:1999
