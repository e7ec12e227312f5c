"""Helpers for the security tests: handshakes that report their HTTP status, and a
small app that records what reached its hooks and handlers, and a relay app that records
its closes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from partydeco import App, Connection, Party, Request


@dataclass
class Seen:
    """What the app saw: hook runs, connections, messages, closes."""

    hooks: int = 0
    requests: int = 0
    messages: list[str | bytes] = field(default_factory=list)
    addresses: list[str | None] = field(default_factory=list)
    closes: list[tuple[int, str]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


def echo_app(seen: Seen, **options: Any) -> App:
    """An app whose ``main`` party echoes every message back and records everything."""
    app = App(storage="memory://", **options)
    room = Party("main", app)

    @room.before_connect
    async def count(request: Request, lobby: object) -> None:
        seen.hooks += 1

    @room.before_request
    async def count_http(request: Request, lobby: object) -> None:
        seen.hooks += 1

    @room.on_connect
    async def hello(conn: Any, ctx: Any) -> None:
        seen.addresses.append(ctx.request.remote_addr)
        conn.send("hello")

    @room.on_message
    async def echo(message: str | bytes, conn: Any) -> None:
        seen.messages.append(message)
        conn.send(message)

    @room.on_close
    async def closed(conn: Any, code: int, reason: str) -> None:
        seen.closes.append((code, reason))
        seen.closed.set()

    @room.on_request
    async def answer(request: Request, _room: Any) -> Any:
        seen.requests += 1
        return {"addr": request.remote_addr}

    return app


async def open_ws(
    base: str,
    path: str = "/parties/main/r1",
    *,
    origin: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ClientConnection:
    """Open a WebSocket (raises ``InvalidStatus`` when refused) and read its greeting."""
    ws = await connect(
        f"ws://{base}{path}",
        origin=Origin(origin) if origin is not None else None,
        additional_headers=dict(headers or {}),
        open_timeout=5,
    )
    greeting = await asyncio.wait_for(ws.recv(), 5)
    assert greeting == "hello", greeting
    return ws


async def ws_status(
    base: str,
    path: str = "/parties/main/r1",
    *,
    origin: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> int:
    """101 if the handshake succeeded (the socket is closed again), else the refusal status."""
    try:
        ws = await open_ws(base, path, origin=origin, headers=headers)
    except InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    return 101


async def refusal(
    base: str,
    path: str = "/parties/main/r1",
    *,
    origin: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of a refused handshake (fails if it was accepted)."""
    try:
        ws = await open_ws(base, path, origin=origin, headers=headers)
    except InvalidStatus as exc:
        response = exc.response
        return response.status_code, dict(response.headers.raw_items()), response.body or b""
    await ws.close()
    raise AssertionError("the handshake was accepted")


async def raw_handshake(base: str, path: str, headers: Mapping[str, str]) -> int:
    """Send a WebSocket upgrade with exactly these headers (Host included) over TCP;
    return the response status."""
    host, port = base.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        lines = [
            f"GET {path} HTTP/1.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        return int(status_line.split()[1])
    finally:
        writer.close()
        await writer.wait_closed()


Closes = list[tuple[int, str]]


def relay_app(**options: Any) -> tuple[App, Closes]:
    """Echo to the sender (``echo:``) or relay to the others; records ``on_close``."""
    app = App(storage="memory://", **options)
    room = Party("main", app)
    closes: Closes = []

    @room.on_connect
    async def hello(conn: Connection, ctx: Any) -> None:
        conn.send("hello")

    @room.on_message
    async def relay(message: str | bytes, sender: Connection) -> None:
        if isinstance(message, str) and message.startswith("echo:"):
            sender.send(message)
        else:
            sender.room.broadcast(message, without=[sender.id])

    @room.on_close
    async def closed(conn: Connection, code: int, reason: str) -> None:
        closes.append((code, reason))

    return app, closes
