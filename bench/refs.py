"""Reference servers for the benchmark: the same protocol without partydeco.

* ``quart``: a minimal hand-written Quart app on Hypercorn (the baseline);
* ``asgi``: a bare ASGI callable, no framework (on Hypercorn: the ceiling for
  partydeco on Hypercorn; on Uvicorn: the same for Uvicorn);
* ``starlette``: Starlette, as a Python user might write it.

Their auth is a presence check only (any ``token``, any ``Bearer``), and they
keep a dict of sets of connections, nothing else: what is left of a framework.

Usage: python bench/refs.py quart|asgi|starlette --port PORT [--server hypercorn|uvicorn] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

Rooms = dict[str, set[Any]]


def make_quart() -> Any:
    """The minimal Quart app."""
    from quart import Quart, request, websocket

    app = Quart("ref")
    rooms: Rooms = {}

    @app.get("/parties/<party>/<room>")
    async def info(party: str, room: str) -> Any:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return {"error": "unauthorized"}, 401
        return {"room": room, "connections": len(rooms.get(f"{party}/{room}", ()))}

    @app.websocket("/parties/<party>/<room>")
    async def socket(party: str, room: str) -> Any:
        if not websocket.args.get("token"):
            return "token required", 403
        await websocket.accept()
        me = websocket._get_current_object()  # type: ignore[attr-defined]
        members = rooms.setdefault(f"{party}/{room}", set())
        members.add(me)
        try:
            await me.send("hello")
            while True:
                data = await me.receive()
                if isinstance(data, str) and data.startswith("echo:"):
                    await me.send(data)
                    continue
                for other in list(members):
                    if other is not me:
                        await other.send(data)
        finally:
            members.discard(me)

    return app


def make_asgi() -> Any:
    """The protocol as one ASGI callable."""
    rooms: Rooms = {}

    async def respond(send: Any, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        parts = scope["path"].split("/")
        if len(parts) != 4 or parts[1] != "parties":
            if scope["type"] == "http":
                await respond(send, 404, b"{}")
            return
        key = parts[2] + "/" + parts[3]
        if scope["type"] == "http":
            auth = dict(scope["headers"]).get(b"authorization", b"")
            if not auth.startswith(b"Bearer "):
                await respond(send, 401, b'{"error": "unauthorized"}')
                return
            body = json.dumps({"room": parts[3], "connections": len(rooms.get(key, ()))})
            await respond(send, 200, body.encode())
            return
        await receive()  # websocket.connect
        if not parse_qs(scope["query_string"].decode("latin-1")).get("token"):
            await send({"type": "websocket.close", "code": 1008})  # refused: HTTP 403
            return
        await send({"type": "websocket.accept"})
        members = rooms.setdefault(key, set())
        members.add(send)
        try:
            await send({"type": "websocket.send", "text": "hello"})
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is not None and text.startswith("echo:"):
                    await send({"type": "websocket.send", "text": text})
                    continue
                out = {"type": "websocket.send", "text": text, "bytes": message.get("bytes")}
                for other in list(members):
                    if other is not send:
                        await other(out)
        finally:
            members.discard(send)

    return app


def make_starlette() -> Any:
    """The protocol on Starlette."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    rooms: Rooms = {}

    async def info(request: Request) -> JSONResponse:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        party, room = request.path_params["party"], request.path_params["room"]
        return JSONResponse({"room": room, "connections": len(rooms.get(f"{party}/{room}", ()))})

    async def socket(ws: WebSocket) -> None:
        if not ws.query_params.get("token"):
            await ws.close(code=1008)
            return
        await ws.accept()
        members = rooms.setdefault(f"{ws.path_params['party']}/{ws.path_params['room']}", set())
        members.add(ws)
        try:
            await ws.send_text("hello")
            while True:
                text = await ws.receive_text()
                if text.startswith("echo:"):
                    await ws.send_text(text)
                    continue
                for other in list(members):
                    if other is not ws:
                        await other.send_text(text)
        except WebSocketDisconnect:
            pass
        finally:
            members.discard(ws)

    return Starlette(routes=[
        Route("/parties/{party}/{room}", info), WebSocketRoute("/parties/{party}/{room}", socket),
    ])  # fmt: skip


def main() -> None:
    """Serve one reference app."""
    parser = argparse.ArgumentParser()
    parser.add_argument("app", choices=["quart", "asgi", "starlette"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=["hypercorn", "uvicorn"], default="hypercorn")
    parser.add_argument("--uvloop", action="store_true", help="Hypercorn on uvloop, not asyncio")
    args = parser.parse_args()
    app = {"quart": make_quart, "asgi": make_asgi, "starlette": make_starlette}[args.app]()
    if args.server == "uvicorn":
        import uvicorn

        uvicorn.run(
            app, host=args.host, port=args.port, ws_per_message_deflate=False,
            ws_ping_interval=None, log_level="warning", access_log=False,
        )  # fmt: skip
        return
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{args.host}:{args.port}"]
    config.accesslog = None
    config.websocket_ping_interval = None
    if args.uvloop:
        import uvloop

        uvloop.run(serve(app, config))  # type: ignore[arg-type]
    else:
        asyncio.run(serve(app, config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
