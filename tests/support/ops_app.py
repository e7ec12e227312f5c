"""The app the operations tests serve, in the test's loop or as ``partydeco serve`` processes.

Parties ``main`` and ``chat``, the same on each:

- WebSocket ``?token=t-<name>`` (else 401); the principal is ``<name>``; ``?tag=<t>``
  adds a tag. ``on_connect`` sends ``{"pid": ...}``.
- A text frame ``boom`` makes ``on_message`` raise ``RuntimeError``; ``count`` does a
  storage get-then-put and answers ``count:<n>``; ``close:<code>`` closes the sender
  with that code; anything else is broadcast to the whole room.
- HTTP ``GET`` answers ``{"pid": ...}``; ``GET /pid`` (not a room) too.

``REDIS_PREFIX`` and ``LEASE`` set the cluster's key prefix and lease, as in
``cluster_app``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from partydeco import App, ConnectContext, Connection, Lobby, Request, Response, Room

app = App(
    redis_lease=float(os.environ.get("LEASE", "5")),
    redis_prefix=os.environ.get("REDIS_PREFIX", "partydeco"),
    idle_timeout=600,
    storage="memory://",
)
log = logging.getLogger("ops_app")


@app.quart.route("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


def authenticate(request: Request, lobby: Lobby) -> Request | Response:
    token = request.args.get("token", "")
    if not token.startswith("t-"):
        return Response("Unauthorized", status=401)
    request.principal = token[2:]
    return request


def tags(connection: Connection, ctx: ConnectContext) -> list[str]:
    tag = ctx.request.args.get("tag")
    return [tag] if tag else []


def hello(connection: Connection, ctx: ConnectContext) -> None:
    log.info("joined")
    connection.send({"pid": os.getpid()})


async def relay(message: str | bytes, sender: Connection) -> None:
    if message == "boom":
        raise RuntimeError("boom")
    if message == "count":
        storage = sender.room.storage
        n = (await storage.get("n") or 0) + 1
        await storage.put("n", n)
        sender.send(f"count:{n}")
        return
    if isinstance(message, str) and message.startswith("close:"):
        sender.close(int(message[6:]))
        return
    sender.room.broadcast(message)


async def info(request: Request, room: Room) -> Any:
    log.info("answered")
    return {"pid": os.getpid(), "room": room.id}


for name in ("main", "chat"):
    party = app.party(name)
    party.before_connect(authenticate)
    party.before_request(authenticate)
    party.connection_tags(tags)
    party.on_connect(hello)
    party.on_message(relay)
    party.on_request(info)
