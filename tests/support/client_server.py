"""A tiny raw-ASGI party server on a real Hypercorn, for the Python client's behaviour tests.

It speaks partydeco's wire protocol without depending on the core: rooms at
``/parties/<party>/<room>``, the connection id from ``_pk``, a ``token`` query parameter
checked before accepting (``good`` passes; anything else gets HTTP 401 ``Unauthorized``).

Text frames it understands:
    ``echo:<x>``        answers ``<x>`` to the sender
    ``close:<code>``    closes the sender's connection with that code
    anything else       is broadcast to the room's other connections
Binary frames are echoed to the sender. HTTP requests to a room answer a JSON description
of the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from hypercorn.asyncio import serve
from hypercorn.config import Config

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Seen:
    """What the server observed, for assertions."""

    #: (pk, query) of every accepted connection, in order
    connects: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    #: query of every refused handshake
    refused: list[dict[str, str]] = field(default_factory=list)
    #: (pk, close code) of every ended connection
    disconnects: list[tuple[str, int]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait (up to 5 s) until ``predicate()`` holds; it is checked on every observation."""
        async with asyncio.timeout(5), self.changed:
            await self.changed.wait_for(predicate)

    async def note(self) -> None:
        async with self.changed:
            self.changed.notify_all()


class PartyEchoApp:
    """The raw ASGI app described in the module docstring."""

    def __init__(self) -> None:
        self.seen = Seen()
        self.rooms: dict[str, dict[str, Send]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        parts = scope["path"].strip("/").split("/")
        query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
        if len(parts) < 3 or parts[0] != "parties":
            if scope["type"] == "http":
                await self._http(send, 404, b"Not found")
            return
        if scope["type"] == "websocket":
            await self._websocket(f"{parts[1]}/{parts[2]}", query, receive, send)
        else:
            body = b""
            while True:
                event = await receive()
                body += event.get("body", b"")
                if not event.get("more_body"):
                    break
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            described = {
                "method": scope["method"],
                "path": scope["path"],
                "query": query,
                "authorization": headers.get("authorization"),
                "body": body.decode(),
            }
            await self._http(send, 200, json.dumps(described).encode(), "application/json")

    async def _http(self, send: Send, status: int, body: bytes, ctype: str = "text/plain") -> None:
        headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _websocket(
        self, room: str, query: dict[str, str], receive: Receive, send: Send
    ) -> None:
        await receive()  # websocket.connect
        if query.get("token") != "good":
            self.seen.refused.append(query)
            await self.seen.note()
            body = b"Unauthorized"
            headers = [(b"content-type", b"text/plain"), (b"content-length", b"12")]
            await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
            return
        pk = query.get("_pk", "")
        await send({"type": "websocket.accept"})
        members = self.rooms.setdefault(room, {})
        members[pk] = send
        self.seen.connects.append((pk, query))
        await self.seen.note()
        await send({"type": "websocket.send", "text": f"hello {pk}"})
        code = 1005
        try:
            while True:
                event = await receive()
                if event["type"] == "websocket.disconnect":
                    code = event.get("code", 1005)
                    break
                if event.get("bytes") is not None:
                    await send({"type": "websocket.send", "bytes": event["bytes"]})
                    continue
                text: str = event.get("text") or ""
                if text.startswith("echo:"):
                    await send({"type": "websocket.send", "text": text[5:]})
                elif text.startswith("close:"):
                    code = int(text[6:])
                    await send({"type": "websocket.close", "code": code, "reason": "bye"})
                    break
                else:
                    for other, other_send in list(members.items()):
                        if other != pk:
                            with contextlib.suppress(Exception):
                                await other_send({"type": "websocket.send", "text": text})
        finally:
            if members.get(pk) is send:
                del members[pk]
            self.seen.disconnects.append((pk, code))
            await self.seen.note()


class Server:
    """A Hypercorn server for ``app`` on a fixed loopback port that can stop and start again."""

    def __init__(self, app: PartyEchoApp, port: int) -> None:
        self.app = app
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start serving and wait until the port accepts connections."""
        config = Config()
        config.bind = [self.host]
        config.graceful_timeout = 1.0
        config.accesslog = None
        config.errorlog = None
        self._stop = asyncio.Event()
        app: Any = self.app  # a raw ASGI callable; hypercorn's scope types are narrower
        self._task = asyncio.create_task(serve(app, config, shutdown_trigger=self._stop.wait))
        async with asyncio.timeout(10):
            while True:
                if self._task.done():
                    self._task.result()  # raises the start-up error
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.01)  # polling the port: the condition is "it accepts"
                    continue
                writer.close()
                await writer.wait_closed()
                return

    async def stop(self) -> None:
        """Shut down gracefully and wait until it has."""
        assert self._stop is not None and self._task is not None
        self._stop.set()
        await self._task


@contextlib.asynccontextmanager
async def running(
    app: PartyEchoApp | None = None, port: int | None = None
) -> AsyncIterator[Server]:
    """Run a :class:`PartyEchoApp` for the duration of the block."""
    server = Server(app or PartyEchoApp(), port or free_port())
    await server.start()
    try:
        yield server
    finally:
        if server._task is not None and not server._task.done():
            await server.stop()


@contextlib.asynccontextmanager
async def serve_app_on(app: Any, port: int) -> AsyncIterator[str]:
    """Serve a partydeco ``App`` on a fixed loopback port (so a test can restart it there)."""
    from partydeco.testing import serving

    async with serving(app, port=port, websocket_ping_interval=None) as base:
        yield base
