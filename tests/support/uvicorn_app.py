"""An app served by ``party.run(server="uvicorn")``, for tests/server/test_uvicorn.py.

``python tests/support/uvicorn_app.py`` serves on ``$PORT``; ``READ_TIMEOUT`` and
``PING_INTERVAL`` (seconds) and ``WORKERS`` set those options. Each ``on_close``
prints ``closed <code>`` to stdout, and the message ``mark`` prints ``marked``.
``GET /slow`` sends its head at once and its body after ``POST /release``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from partydeco import App, ConnectContext, Connection, Lobby, Request, Response, Room

app = App(max_message_size=64 * 1024, shutdown_timeout=3)
party = app.party("main")


@party.before_connect
@party.before_request
async def authenticate(request: Request, lobby: Lobby) -> Request | Response:
    if request.args.get("token") != "secret":
        return Response("Unauthorized", status=401)
    request.headers["X-User-ID"] = "alice"
    return request


@party.on_connect
async def hello(connection: Connection, ctx: ConnectContext) -> None:
    connection.send(f"hello {ctx.request.headers['X-User-ID']} {os.getpid()}")


@party.on_message
async def echo(message: str | bytes, sender: Connection) -> None:
    if message == "mark":
        print("marked", flush=True)  # everything the peer sent before has been read
    sender.send(message if isinstance(message, str) else f"{len(message)} bytes")


@party.on_close
async def closed(connection: Connection, code: int, reason: str) -> None:
    print(f"closed {code}", flush=True)


@party.on_request
async def info(request: Request, room: Room) -> dict[str, Any]:
    return {"room": room.id, "pid": os.getpid()}


@app.quart.get("/plain")
async def plain() -> str:
    return "plain"


released = asyncio.Event()


@app.quart.get("/slow")
async def slow() -> Any:
    """The head at once, the body once ``POST /release`` came."""

    async def body() -> Any:
        await released.wait()
        yield b"late"

    return body(), 200, {"Content-Type": "text/plain"}


@app.quart.post("/release")
async def release() -> str:
    released.set()
    return "released"


if __name__ == "__main__":
    options: dict[str, Any] = {}
    if "READ_TIMEOUT" in os.environ:
        options["read_timeout"] = float(os.environ["READ_TIMEOUT"])
    if "PING_INTERVAL" in os.environ:
        options["ws_ping_interval"] = float(os.environ["PING_INTERVAL"])
    app.run(
        server="uvicorn",
        port=int(os.environ["PORT"]),
        workers=int(os.environ.get("WORKERS", "1")),
        **options,
    )
    print("run returned", flush=True)
    sys.exit(0)
