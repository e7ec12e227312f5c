"""Checked by mypy (strict), never run: the decorators keep each handler's type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import msgspec

from partydeco import (
    ConnectContext,
    Connection,
    Cron,
    CronLobby,
    Lobby,
    Party,
    Request,
    Response,
    Room,
    party,
    requires_env,
)


class Move(msgspec.Struct):
    x: int


@party.before_connect
async def authenticate(request: Request, lobby: Lobby) -> Request | Response:
    return request


@party.on_connect
def hello(connection: Connection, ctx: ConnectContext) -> None:
    connection.send("hi")


@Party("game").on_message
async def move(message: Move, sender: Connection) -> None:
    sender.room.broadcast(message, without=[sender.id])


@party.on_request
async def info(request: Request, room: Room) -> dict[str, int]:
    return {"n": len(list(room.get_connections()))}


# The decorated names are still the original functions, with their exact types.
keep_hook: Callable[[Request, Lobby], object] = authenticate
keep_move: Callable[[Move, Connection], object] = move
keep_info: Callable[[Request, Room], object] = info


@party.on_alarm
async def ring(room: Room) -> None:
    count: int = await room.storage.get("count") or 0
    await room.storage.put("count", count + 1)
    await room.storage.set_alarm(60.0)
    entries: dict[str, object] = await room.storage.get(["a", "b"])
    deleted: bool = await room.storage.delete("a")
    removed: int = await room.storage.delete(["a", "b"])
    del entries, deleted, removed


keep_ring: Callable[[Room], object] = ring


@party.on_cron("*/5 * * * *")
async def tidy(cron: Cron, lobby: CronLobby) -> None:
    when: datetime = cron.scheduled_at
    response = await lobby.parties["main"].get("lobby").fetch("/tidy", method="POST")
    status: int = response.status
    del when, status


keep_tidy: Callable[[Cron, CronLobby], Awaitable[None]] = tidy


@party.on_message
@requires_env("TOKEN")
async def awaited(message: str, sender: Connection) -> None:
    await sender.send(message)  # send, broadcast and close may be awaited
    await sender.room.broadcast(message)
    await sender.close()


# requires_env returns the handler with its type.
keep_awaited: Callable[[str, Connection], object] = awaited


@party.on_join
async def joined(user: str, room: Room) -> None:
    present: dict[str, int] = room.presence.users()
    offset: int = room.history.offset
    room.broadcast({"joined": user, "present": len(present), "at": offset}, history=False)


@party.on_leave
def left(user: str, room: Room) -> None:
    del user, room


keep_joined: Callable[[str, Room], object] = joined
keep_left: Callable[[str, Room], object] = left
