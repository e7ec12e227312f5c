"""A counter per room, kept in room storage, that resets itself after a quiet spell.

- WebSocket ``/parties/main/<room>?token=<token>``: the room sends ``{"count": n}`` on
  connect and after every change; send ``increment`` to add one.
- HTTP ``GET /parties/main/<room>`` (``Authorization: Bearer <token>``) answers
  ``{"count": n}``; ``POST`` adds one.
- ``RESET_AFTER`` seconds after the last increment (``COUNTER_RESET_AFTER``, default one
  hour) the room's alarm sets the count back to 0 and tells everyone connected. Alarms are
  stored with the count: one fires with nobody connected, and after a restart.

The count lives in ``.partydeco/storage.db`` (SQLite) under the working directory unless
``PARTYDECO_STORAGE`` says otherwise, so restarting the server keeps it. Tokens are listed
in ``TOKENS`` as ``token:user,token:user``; without it everyone is refused.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping

from partydeco import ConnectContext, Connection, Lobby, Request, Response, Room, party
from partydeco.env import load_env

__all__ = ["party"]  # what `hypercorn app:party` serves

RESET_AFTER = float(load_env().get("COUNTER_RESET_AFTER", "3600"))


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


async def increment(room: Room) -> int:
    """Add one to the room's count, tell everyone, and move the reset alarm."""
    async with room.storage.transaction() as tx:  # concurrent increments never collide
        count: int = (await tx.get("count") or 0) + 1
        await tx.put("count", count)
    await room.storage.set_alarm(time.time() + RESET_AFTER)  # replaces the previous one
    room.broadcast({"count": count})
    return count


@party.on_connect
async def welcome(connection: Connection, ctx: ConnectContext) -> None:
    connection.send({"count": await connection.room.storage.get("count") or 0})


@party.on_message
async def on_message(message: str | bytes, sender: Connection) -> None:
    if message == "increment":
        await increment(sender.room)


@party.on_request
async def counter(request: Request, room: Room) -> dict[str, int]:
    if request.method == "POST":
        return {"count": await increment(room)}
    return {"count": await room.storage.get("count") or 0}


@party.on_alarm
async def reset(room: Room) -> None:
    await room.storage.put("count", 0)
    room.broadcast({"count": 0})


if __name__ == "__main__":
    party.run()  # $HOST:$PORT, by default 127.0.0.1:1999
