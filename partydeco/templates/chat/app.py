"""Chat rooms with presence, and the browser page that uses them.

Open ``http://127.0.0.1:1999/?room=lobby&token=alice-token``, and the same with
``bob-token`` in another tab. The page (``static/``, served by partydeco) joins the room
with the partysocket client, lists who is there and shows the messages.

Tokens are listed in ``TOKENS`` (the environment or a ``.env`` file) as
``token:user,token:user``; without it everyone is refused. A WebSocket carries its token
in ``?token=`` (browsers cannot put headers on one), an HTTP request in
``Authorization: Bearer``; the checks pass the user to the room as ``X-User-ID``.

Messages are typed: the page sends ``{"type": "message", "text": "..."}``; the room sends
``{"type": "message", "from": user, "text": ...}`` and ``{"type": "presence", ...}``
(see ``presence.py``). Anything else gets an ``invalid_message`` error frame.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

import msgspec
from partydeco import ConnectContext, Connection, Lobby, Request, Response, Room, party

import presence

__all__ = ["party"]  # what `hypercorn app:party` serves

MAX_TEXT = 500

party.static("static")  # the page, at / (index.html) and its assets


class Say(msgspec.Struct, tag="message"):
    """What the page sends: ``{"type": "message", "text": "..."}``."""

    text: str


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
        return Response("Unauthorized", status=401)
    request.headers["X-User-ID"] = user  # replaces any X-User-ID the client sent
    return request


@party.before_connect
async def authenticate_socket(request: Request, lobby: Lobby) -> Request | Response:
    return admit(request, request.args.get("token", ""), lobby)


@party.before_request
async def authenticate_request(request: Request, lobby: Lobby) -> Request | Response:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return admit(request, token if scheme.lower() == "bearer" else "", lobby)


@party.on_connect
async def enter(connection: Connection, ctx: ConnectContext) -> None:
    presence.join(connection, ctx.request.headers["X-User-ID"])


@party.on_message
async def say(message: Say, sender: Connection) -> None:
    text = message.text.strip()[:MAX_TEXT]
    if text:
        sender.room.broadcast({"type": "message", "from": sender.state["user"], "text": text})


@party.on_close
async def leave(connection: Connection, code: int, reason: str) -> None:
    presence.leave(connection)


@party.on_request
async def who(request: Request, room: Room) -> dict[str, Any]:
    return {"room": room.id, "you": request.headers["X-User-ID"], "users": presence.users(room)}


if __name__ == "__main__":
    party.run()  # $HOST:$PORT, by default 127.0.0.1:1999
