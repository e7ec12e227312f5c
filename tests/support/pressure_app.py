"""A partydeco app for the memory and shutdown tests, run as its own process so that its
memory can be read from ``/proc`` and signals sent to it: ``PORT=...
PRESSURE_OPTIONS='{"max_pending_bytes_per_process": ...}' python -m tests.support.pressure_app``,
or ``hypercorn tests.support.pressure_app:app`` (the options are ``App()``'s).

Party ``main``: every socket is greeted with ``hello``; a text frame ``fill:N:SIZE`` makes
the server send N messages of SIZE bytes to every connection of the room, each message
personalised (its own string, so nothing is shared between receivers). ``GET`` on a room
answers ``{"closes": {code: count}}``, the close codes ``on_close`` saw in the process.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from partydeco import App, Connection, Request, Room

CLOSES: Counter[int] = Counter()


def build(app: App) -> App:
    main = app.party("main")

    @main.on_connect
    async def hello(connection: Connection, ctx: Any) -> None:
        connection.send("hello")

    @main.on_message
    async def fill(message: str | bytes, sender: Connection) -> None:
        if isinstance(message, str) and message.startswith("fill:"):
            _, count, size = message.split(":")
            for i in range(int(count)):
                for conn in sender.room.get_connections():
                    head = f"{conn.id}:{i}:"
                    conn.send(head + "x" * (int(size) - len(head)))

    @main.on_close
    async def closed(connection: Connection, code: int, reason: str) -> None:
        CLOSES[code] += 1

    @main.on_request
    async def report(request: Request, room: Room) -> dict[str, Any]:
        return {"closes": {str(code): n for code, n in CLOSES.items()}}

    return app


app = build(App(storage="memory://", **json.loads(os.environ.get("PRESSURE_OPTIONS", "{}"))))

if __name__ == "__main__":
    app.run(websocket_ping_interval=None)
