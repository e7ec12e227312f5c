"""The hot path's mechanics: frames written at once or queued behind a slow write,
and Hypercorn's read timeout (one timer per connection) still dropping dead peers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from partydeco import App, ConnectContext, Connection
from partydeco.outbox import Outbox
from tests.support import eventually, serve


class SlowSend:
    """An ASGI ``send`` that writes at once unless it is told to wait."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.gate is not None and message["type"] == "websocket.send":
            await self.gate.wait()
        self.sent.append(message)

    def texts(self) -> list[str]:
        return [m["text"] for m in self.sent if m["type"] == "websocket.send"]


def outbox(send: SlowSend, **options: Any) -> Outbox:
    options = {"max_messages": 100, "max_bytes": 1 << 20, "close_timeout": 5, **options}
    return Outbox(send, **options)


async def test_an_idle_socket_gets_its_frame_before_put_returns() -> None:
    send = SlowSend()
    box = outbox(send)
    await box.accept()
    box.put("one")
    box.put(b"two")
    assert send.sent[1:] == [
        {"type": "websocket.send", "text": "one"},
        {"type": "websocket.send", "bytes": b"two"},
    ]
    assert box.pending == 0


async def test_frames_queue_behind_a_write_that_waits_and_keep_their_order() -> None:
    send = SlowSend()
    box = outbox(send)
    await box.accept()
    box.put("a")
    send.gate = asyncio.Event()
    box.put("b")  # the socket is full: this write waits
    box.put("c")
    box.put("d")
    assert send.texts() == ["a"]
    assert box.pending == 2
    send.gate.set()
    await eventually(lambda: send.texts() == ["a", "b", "c", "d"])
    send.gate = None
    box.put("e")  # idle again: written at once
    assert send.texts()[-1] == "e"


async def test_a_peer_that_falls_behind_is_closed_with_1013_after_its_waiting_write() -> None:
    send = SlowSend()
    box = outbox(send, max_messages=3)
    await box.accept()
    send.gate = asyncio.Event()
    for i in range(5):
        box.put(str(i))
    assert box.closing and box.close_frame == (1013, "send queue full")
    send.gate.set()
    await eventually(lambda: send.sent[-1]["type"] == "websocket.close")
    assert send.texts() == ["0"]  # the queued frames were dropped
    assert send.sent[-1]["code"] == 1013
    box.finish()


async def test_a_close_waits_for_the_queued_frames() -> None:
    send = SlowSend()
    box = outbox(send)
    await box.accept()
    send.gate = asyncio.Event()
    box.put("x")
    box.put("y")
    box.close(4000, "bye")
    box.put("ignored")
    send.gate.set()
    await eventually(lambda: send.sent[-1]["type"] == "websocket.close")
    assert send.texts() == ["x", "y"]
    assert send.sent[-1] == {"type": "websocket.close", "code": 4000, "reason": "bye"}
    box.finish()


async def test_a_failing_send_marks_the_socket_closing() -> None:
    async def broken(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            raise ConnectionResetError("gone")

    box = Outbox(broken, max_messages=10, max_bytes=1000, close_timeout=1)
    await box.accept()
    box.put("lost")
    assert box.closing
    box.put("also lost")
    assert box.pending == 0


async def test_frames_sent_before_accept_go_out_after_it() -> None:
    send = SlowSend()
    box = outbox(send)
    box.put("early")
    assert send.sent == []
    await box.accept()
    await eventually(lambda: send.texts() == ["early"])


def relay_app() -> App:
    app = App()
    main = app.party()

    @main.on_connect
    async def greet(connection: Connection, ctx: ConnectContext) -> None:
        connection.send("hello")

    @main.on_message
    async def relay(message: str, sender: Connection) -> None:
        sender.room.broadcast(message, without=[sender.id])

    return app


async def test_a_broadcast_reaches_every_peer_in_order_while_one_peer_is_stalled() -> None:
    payload = base64.b64encode(os.urandom(30000)).decode()  # does not compress
    async with serve(relay_app()) as base:
        url = f"ws://{base}/parties/main/r"
        stalled = await connect(f"{url}?_pk=stalled", max_queue=1, compression=None)
        async with (
            connect(f"{url}?_pk=a", compression=None) as a,
            connect(f"{url}?_pk=b", compression=None) as b,
            connect(f"{url}?_pk=sender", compression=None) as sender,
        ):
            for ws in (stalled, a, b, sender):
                assert await ws.recv() == "hello"
            for i in range(40):  # ~1.6 MB: far more than the stalled peer's buffers hold
                await sender.send(f"{i}:{payload}")
            for ws in (a, b):
                for i in range(40):
                    assert (await asyncio.wait_for(ws.recv(), 5)).startswith(f"{i}:")
        # the stalled peer still gets every frame, in order, once it reads again
        for i in range(40):
            assert (await asyncio.wait_for(stalled.recv(), 5)).startswith(f"{i}:")
        await stalled.close()


async def handshake(base: str, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {base}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    return first & 0x0F, await reader.readexactly(length)


def masked(opcode: int, payload: bytes) -> bytes:
    mask = b"\x01\x02\x03\x04"
    body = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


async def test_a_peer_that_stops_answering_pings_is_dropped_after_the_read_timeout() -> None:
    app = relay_app()
    closed: list[int] = []

    @app.party().on_close
    async def gone(connection: Connection, code: int, reason: str) -> None:
        closed.append(code)

    async with serve(app, websocket_ping_interval=0.1, read_timeout=0.5) as base:
        reader, writer = await handshake(base, "/parties/main/r?_pk=mute")
        assert await read_frame(reader) == (1, b"hello")
        # read pings, answer none: the server must give up on us
        while True:
            frame = await asyncio.wait_for(reader.read(100), 10)
            if not frame:
                break
        writer.close()
        await eventually(lambda: closed == [1006])


async def test_a_peer_that_answers_pings_outlives_the_read_timeout() -> None:
    async with serve(relay_app(), websocket_ping_interval=0.1, read_timeout=0.5) as base:
        reader, writer = await handshake(base, "/parties/main/r?_pk=alive")
        assert await read_frame(reader) == (1, b"hello")
        pings = 0
        while pings < 15:  # 1.5 s of pings: three read timeouts
            opcode, payload = await asyncio.wait_for(read_frame(reader), 5)
            assert opcode == 9
            pings += 1
            writer.write(masked(10, payload))
        async with connect(f"ws://{base}/parties/main/r?_pk=other") as other:
            assert await other.recv() == "hello"
            writer.write(masked(1, b"still here"))
            assert await asyncio.wait_for(other.recv(), 5) == "still here"
        writer.close()



def test_the_url_is_built_from_the_raw_host_header_and_follows_hook_changes() -> None:
    from partydeco import Request

    raw = [(b"accept", b"*/*"), (b"HOST", b"example.com:8080")]
    request = Request("GET", "/parties/main/r", query_string=b"a=1", headers=raw, scheme="ws")
    assert request.url == "ws://example.com:8080/parties/main/r?a=1"
    assert Request("GET", "/p", headers=[]).url == "http:///p"
    changed = Request("GET", "/p", headers=list(raw))
    changed.headers["Host"] = "other.example"
    assert changed.url == "http://other.example/p"


async def test_a_send_that_returns_a_future_still_delivers_in_order() -> None:
    loop = asyncio.get_running_loop()
    sent: list[dict[str, Any]] = []

    def send(message: dict[str, Any]) -> asyncio.Future[None]:
        sent.append(message)
        done: asyncio.Future[None] = loop.create_future()
        loop.call_soon(done.set_result, None)
        return done

    box = Outbox(send, max_messages=10, max_bytes=1000, close_timeout=1)
    await box.accept()
    for text in ("a", "b", "c"):
        box.put(text)
    box.close()
    await eventually(lambda: sent and sent[-1]["type"] == "websocket.close")
    assert [m.get("text") for m in sent[1:-1]] == ["a", "b", "c"]
    box.finish()


async def test_sockets_and_requests_leave_no_reference_cycles_for_the_gc() -> None:
    """Each socket's objects are freed when it closes, not at the next GC pass:
    a server that opens thousands of sockets a second keeps the collector idle."""
    from partydeco import Request, Response, Room
    from partydeco.testing import HandshakeRefusedError, TestClient

    app = App()
    party = app.party("main")

    @party.before_connect
    async def refuse_some(request: Request, lobby: Any) -> Request | Response:
        return Response("no", 403) if lobby.id == "closed" else request

    @party.on_connect
    async def hello(conn: Connection, ctx: ConnectContext) -> None:
        conn.send("hello")

    @party.on_request
    async def info(request: Request, room: Room) -> Response:
        return Response.json({"room": room.id})

    async with TestClient(app) as client:
        async with client.connect("warm") as ws:  # imports, the room
            await ws.receive()
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for i in range(20):
                async with client.connect(f"room-{i % 3}") as ws:
                    assert await ws.receive() == "hello"
                assert (await client.get(f"/parties/main/room-{i % 3}")).status == 200
                with pytest.raises(HandshakeRefusedError):
                    async with client.connect("closed"):
                        pass
            gc.collect()
            ours = (o for o in gc.garbage if type(o).__module__.startswith("partydeco"))
            cyclic = sorted({type(o).__qualname__ for o in ours})
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert cyclic == [], f"partydeco objects freed only by the GC: {cyclic}"


def alive(type_name: str) -> int:
    """How many objects of the type named *type_name* exist (the GC tracks them)."""
    return sum(type(o).__name__ == type_name for o in gc.get_objects())


@contextlib.contextmanager
def gc_disabled() -> Iterator[None]:
    """No cyclic GC meanwhile: what is freed is freed by reference counting."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_a_closed_connection_on_hypercorn_is_freed_without_the_gc() -> None:
    """A closed socket's Hypercorn stream and partydeco's limits on it, and every
    connection's ``TCPServer`` (which holds its protocol, and the protocol it, until
    partydeco drops the protocol as the connection's task ends), are freed by
    reference counting: no cycle holds them, or the parsers, for the GC."""
    import httpx

    async with serve(relay_app()) as base:
        with gc_disabled():
            for i in range(3):
                async with connect(f"ws://{base}/parties/main/r?_pk=p{i}") as ws:
                    assert await ws.recv() == "hello"
                async with httpx.AsyncClient() as client:
                    # (a keep-alive connection would wait out Hypercorn's keep-alive timeout)
                    answer = await client.get(
                        f"http://{base}/parties/main/r", headers={"Connection": "close"}
                    )
                    assert answer.status_code == 404  # the party has no on_request
            await eventually(lambda: alive("WSStream") == 0, message="streams wait for the GC")
            await eventually(lambda: alive("TCPServer") == 0, message="connections wait for the GC")


async def test_a_websocket_on_uvicorn_leaves_no_http_protocol_for_the_gc() -> None:
    """After the upgrade Uvicorn never calls the HTTP protocol's ``connection_lost``;
    partydeco breaks its cycle through the parser, so each connect's HTTP protocol
    (and its transport) is freed by reference counting, not by the GC."""
    from partydeco.server.uvicorn import UvicornServer, bind, uvicorn_config
    from partydeco.testing import free_port

    app = relay_app()
    port = free_port()
    server = UvicornServer(uvicorn_config(app, port=port, log_level="warning"), app)
    task = asyncio.create_task(server.serve(sockets=[bind("127.0.0.1", port)]))
    try:
        await eventually(lambda: server.started, message="Uvicorn did not start")
        with gc_disabled():
            for i in range(5):
                async with connect(f"ws://127.0.0.1:{port}/parties/main/r?_pk=p{i}") as ws:
                    assert await ws.recv() == "hello"
            await eventually(
                lambda: alive("GuardedHttpToolsProtocol") == 0,
                message="upgraded HTTP protocols wait for the GC",
            )
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
