"""A small chat: named users, join/leave notices, a message history per room.

Run it with ``python examples/chat/app.py`` and connect to
``ws://127.0.0.1:1999/parties/chat/<room>?name=<your name>``. Send text; it is
relayed to the room as JSON. ``GET /parties/chat/<room>`` lists who is there.
"""

from __future__ import annotations

from collections import deque

from partydeco import ConnectContext, Connection, Lobby, Party, Request, Response, Room

chat = Party("chat")

#: the last 50 messages of each room, sent to whoever joins
history: dict[str, deque[dict[str, str]]] = {}


@chat.before_connect
def require_name(request: Request, lobby: Lobby) -> Request | Response:
    name = request.args.get("name", "").strip()
    if not name or len(name) > 32:
        return Response("pass ?name= (1 to 32 characters)", status=400)
    request.headers["X-User-ID"] = name
    return request


@chat.on_start
def start(room: Room) -> None:
    history.setdefault(room.id, deque(maxlen=50))


@chat.on_connect
def join(connection: Connection, ctx: ConnectContext) -> None:
    name = ctx.request.headers["X-User-ID"]
    connection.set_state({"name": name})
    for message in history[connection.room.id]:
        connection.send(message)
    connection.room.broadcast({"type": "join", "name": name}, without=[connection.id])


@chat.on_message
def say(message: str | bytes, sender: Connection) -> None:
    if not isinstance(message, str) or not message.strip():
        return
    entry = {"type": "message", "name": sender.state["name"], "text": message[:1000]}
    history[sender.room.id].append(entry)
    sender.room.broadcast(entry)


@chat.on_close
def leave(connection: Connection, code: int, reason: str) -> None:
    if connection.state is not None:
        connection.room.broadcast({"type": "leave", "name": connection.state["name"]})


@chat.on_request
def who(request: Request, room: Room) -> dict[str, object]:
    return {"room": room.id, "users": sorted(c.state["name"] for c in room.get_connections())}


if __name__ == "__main__":
    chat.run()
