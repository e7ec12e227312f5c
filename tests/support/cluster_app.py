"""The app the cluster tests and the Redis bench run in separate processes.

``partydeco serve tests/support/cluster_app.py --redis URL``. ``LEASE`` (seconds) sets the
ownership lease, so failover tests stay short. Module-level counters prove where
handlers run: every reply carries ``os.getpid()``.

- WebSocket ``?token=t-<name>``; the ``before_connect`` hook runs where the socket
  lands (the edge) and records its pid in ``X-Edge-Pid``. ``on_connect`` sends
  ``{"hello": name, "pid": ..., "edge": ...}``.
- Each text frame is broadcast to everyone as ``"<sender id>:<text>"``; a frame
  ``"stats"`` answers only the sender with the handler counters.
- HTTP ``GET`` answers the counters and the open connection ids; ``PUT /<key>``
  stores the body in room storage; ``GET /<key>`` reads it back.
- ``GET /pid`` (not a room) answers the pid of the worker that took the request.
"""

from __future__ import annotations

import os
from typing import Any

from partydeco import App, ConnectContext, Connection, Lobby, Request, Response, Room

app = App(
    redis_lease=float(os.environ.get("LEASE", "5")),
    redis_prefix=os.environ.get("REDIS_PREFIX", "partydeco"),
    idle_timeout=600,
)
party = app.party()

#: frames handled by on_message in this process, and rooms started here.
handled = 0
starts = 0


@app.quart.route("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


@party.before_connect
def authenticate(request: Request, lobby: Lobby) -> Request | Response:
    token = request.args.get("token", "")
    if not token.startswith("t-"):
        return Response("Unauthorized", status=401)
    request.headers["X-User-ID"] = token[2:]
    request.headers["X-Edge-Pid"] = str(os.getpid())
    return request


@party.on_start
def started(room: Room) -> None:
    global starts
    starts += 1


@party.on_connect
def hello(connection: Connection, ctx: ConnectContext) -> None:
    connection.send(
        {
            "hello": ctx.request.headers["X-User-ID"],
            "pid": os.getpid(),
            "edge": int(ctx.request.headers["X-Edge-Pid"]),
        }
    )


@party.on_message
def relay(message: str | bytes, sender: Connection) -> None:
    global handled
    handled += 1
    if message == "stats":
        sender.send({"pid": os.getpid(), "handled": handled})
        return
    text = message if isinstance(message, str) else message.decode()
    sender.room.broadcast(f"{sender.id}:{text}")


@party.on_request
async def info(request: Request, room: Room) -> Any:
    key = request.path.rsplit("/", 1)[-1] if request.path.count("/") > 3 else None
    if key is not None and request.method == "PUT":
        await room.storage.put(key, (await request.body()).decode())
        return {"stored": key, "pid": os.getpid()}
    if key is not None:
        return {"value": await room.storage.get(key), "pid": os.getpid()}
    return {
        "pid": os.getpid(),
        "handled": handled,
        "starts": starts,
        "connections": sorted(c.id for c in room.get_connections()),
    }
