"""A quickstart-like partydeco app for the client tests (Python client, partysocket, TestClient).

Tokens map to users (``alice-token`` -> ``alice``, ``bob-token`` -> ``bob``). The WebSocket
hook reads ``?token=``; the HTTP hook reads ``Authorization: Bearer <token>``; both set
``X-User-ID``. Text frames are relayed to the room's other connections (``kick`` makes the
server close the sender with 4001); binary frames too. ``GET`` on a room answers JSON with the
room id, the user and the open connections' ids.

Run standalone (for restart tests): ``PORT=1999 python -m tests.support.party_app``.
"""

from __future__ import annotations

from typing import Any

from partydeco import App, ConnectContext, Connection, Lobby, Request, Response, Room

TOKENS = {"alice-token": "alice", "bob-token": "bob"}


def build(app: App) -> App:
    """Register the handlers on the ``main`` party of ``app`` and return ``app``."""
    main = app.party("main")

    @main.before_connect
    async def authenticate(request: Request, lobby: Lobby) -> Request | Response:
        user = TOKENS.get(request.args.get("token", ""))
        if user is None:
            return Response("Unauthorized", status=401)
        request.headers["X-User-ID"] = user
        return request

    @main.before_request
    async def authenticate_http(request: Request, lobby: Lobby) -> Request | Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        user = TOKENS.get(token) if scheme.lower() == "bearer" else None
        if user is None:
            return Response("Unauthorized", status=401)
        request.headers["X-User-ID"] = user
        return request

    @main.on_connect
    async def hello(connection: Connection, ctx: ConnectContext) -> None:
        connection.send(f"Hello {ctx.request.headers['X-User-ID']} from party!")

    @main.on_message
    async def relay(message: str | bytes, sender: Connection) -> None:
        if message == "kick":
            sender.close(4001, "kicked")
            return
        sender.room.broadcast(message, without=[sender.id])

    @main.on_request
    async def info(request: Request, room: Room) -> dict[str, Any]:
        ids = sorted(c.id for c in room.get_connections())
        return {
            "room": room.id,
            "userId": request.headers.get("X-User-ID"),
            "method": request.method,
            "connections": len(ids),
            "ids": ids,
        }

    return app


if __name__ == "__main__":
    # No Hypercorn pings: its ping task outlives a closed socket by up to one interval and
    # holds up a graceful shutdown by the full graceful timeout (noted for the core).
    build(App()).run(websocket_ping_interval=None)
