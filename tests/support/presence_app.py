"""A chat-like app with presence and history, for the presence and history tests.

Built in a test with :func:`build`, or run as a process (restarts, ``kill -9``, Redis)::

    PORT=1999 STORAGE=sqlite:///rooms.db python -m tests.support.presence_app
    partydeco serve tests/support/presence_app.py --redis URL

The environment sets the options: ``STORAGE``, ``GRACE`` (``presence_grace``),
``HISTORY``, ``HISTORY_TTL``, ``REDIS_PREFIX``, ``LEASE``.

- WebSocket ``?token=t-<user>`` authenticates as ``<user>`` (through ``X-User-ID``);
  ``?token=anon`` lets a connection in without a principal; anything else is 401.
  HTTP takes ``Authorization: Bearer t-<user>`` the same way.
- A text frame ``drop`` makes the server close the sender with 1012 (clients reconnect);
  ``quiet:<text>`` is broadcast without history; ``skip:<text>`` to everyone but the
  sender; anything else is broadcast to everyone as ``<user>:<text>``.
- ``on_join``, ``on_connect``, ``on_close`` and ``on_leave`` append to :data:`EVENTS`;
  ``GET /parties/main/<room>/events`` answers them with the process id.
"""

from __future__ import annotations

import os
from typing import Any

from partydeco import App, ConnectContext, Connection, Lobby, Request, Response, Room

#: ``[kind, user]`` for each on_join / on_connect / on_close / on_leave, in order.
EVENTS: list[list[str]] = []


def _user(token: str) -> str | None:
    return token[2:] if token.startswith("t-") and len(token) > 2 else None


def build(app: App, events: list[list[str]] | None = None) -> App:
    """Register the handlers on the ``main`` party of *app* and return *app*; the
    presence handlers append to *events* (:data:`EVENTS` by default)."""
    main = app.party()
    log = EVENTS if events is None else events

    @main.before_connect
    def authenticate(request: Request, lobby: Lobby) -> Request | Response:
        token = request.args.get("token", "")
        user = _user(token)
        if user is None and token != "anon":
            return Response("Unauthorized", status=401)
        if user is not None:
            request.headers["X-User-ID"] = user
        return request

    @main.before_request
    def authenticate_http(request: Request, lobby: Lobby) -> Request | Response:
        user = _user(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if user is None:
            return Response("Unauthorized", status=401)
        request.headers["X-User-ID"] = user
        return request

    @main.on_join
    def joined(user: str, room: Room) -> None:
        log.append(["join", user])

    @main.on_connect
    def connected(connection: Connection, ctx: ConnectContext) -> None:
        log.append(["connect", connection.principal or ""])

    @main.on_close
    def closed(connection: Connection, code: int, reason: str) -> None:
        log.append(["close", connection.principal or ""])

    @main.on_leave
    def left(user: str, room: Room) -> None:
        log.append(["leave", user])

    @main.on_message
    def relay(message: str | bytes, sender: Connection) -> None:
        text = message if isinstance(message, str) else message.decode()
        if text == "drop":
            sender.close(1012, "dropped by the test")
        elif text.startswith("quiet:"):
            sender.room.broadcast(text, history=False)
        elif text.startswith("skip:"):
            sender.room.broadcast(text, without=[sender.id])
        else:
            sender.room.broadcast(f"{sender.principal}:{text}")

    @main.on_request
    def events(request: Request, room: Room) -> Any:
        if request.path.endswith("/events"):
            return {"pid": os.getpid(), "events": log}
        return None

    return app


def _options() -> dict[str, Any]:
    env = os.environ
    options: dict[str, Any] = {
        "presence": True,
        "presence_grace": float(env.get("GRACE", "0")),
        "history": int(env.get("HISTORY", "100")),
        "redis_prefix": env.get("REDIS_PREFIX", "partydeco"),
        "redis_lease": float(env.get("LEASE", "5")),
        "idle_timeout": 600,
    }
    if "STORAGE" in env:
        options["storage"] = env["STORAGE"]
    if "HISTORY_TTL" in env:
        options["history_ttl"] = float(env["HISTORY_TTL"])
    return options


app = build(App(**_options()))

if __name__ == "__main__":
    app.run()
