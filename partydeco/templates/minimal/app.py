"""Rooms that greet whoever joins and relay each message to everyone else in the room.

Clients connect to ``ws://HOST/parties/main/<room>?token=<token>`` (browsers cannot put
headers on a WebSocket, so the token travels in the query) and reach a room over HTTP with
``Authorization: Bearer <token>``. Tokens are listed in ``TOKENS`` (the environment or a
``.env`` file) as ``token:user,token:user``; without it every client is refused.

Run it with ``python app.py`` (127.0.0.1:1999) or ``hypercorn -c hypercorn.toml app:party``.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from partydeco import ConnectContext, Connection, Lobby, Request, Response, Room, party

__all__ = ["party"]  # what `hypercorn app:party` serves


def user_for(token: str, env: Mapping[str, str]) -> str | None:
    """The user *token* belongs to in ``TOKENS``, or ``None`` (compared in constant time)."""
    found = None
    for entry in env.get("TOKENS", "").split(","):
        known, _, user = entry.strip().partition(":")
        if known and user and hmac.compare_digest(known.encode(), token.encode()):
            found = user
    return found


def admit(request: Request, token: str, lobby: Lobby) -> Request | Response:
    """Let the request through with its user in ``X-User-ID``, or answer 401."""
    user = user_for(token, lobby.env)
    if user is None:
        return Response("Unauthorized", status=401)  # a WebSocket is never opened
    request.headers["X-User-ID"] = user  # replaces any X-User-ID the client sent
    return request


@party.before_connect
async def authenticate_socket(request: Request, lobby: Lobby) -> Request | Response:
    """A WebSocket carries its token in ``?token=``."""
    return admit(request, request.args.get("token", ""), lobby)


@party.before_request
async def authenticate_request(request: Request, lobby: Lobby) -> Request | Response:
    """An HTTP request carries its token in ``Authorization: Bearer``."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return admit(request, token if scheme.lower() == "bearer" else "", lobby)


@party.on_connect
async def greet(connection: Connection, ctx: ConnectContext) -> None:
    connection.send(f"Hello {ctx.request.headers['X-User-ID']} from party!")


@party.on_message
async def relay(message: str | bytes, sender: Connection) -> None:
    sender.room.broadcast(message, without=[sender.id])


@party.on_request
async def info(request: Request, room: Room) -> dict[str, Any]:
    return {
        "room": room.id,
        "you": request.headers["X-User-ID"],
        "connections": len(list(room.get_connections())),
    }


if __name__ == "__main__":
    party.run()  # $HOST:$PORT, by default 127.0.0.1:1999
