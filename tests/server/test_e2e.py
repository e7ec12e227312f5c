"""End to end: a real Hypercorn server on a free loopback port, real clients."""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import signal
import sys

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from partydeco import App, ConnectContext, Connection, Lobby, Party, Request, Response, Room
from tests.support import ROOT, eventually, serve, start_process


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


def chat_app(**options: object) -> tuple[App, list[tuple[str, int]]]:
    """A relay app with token auth; also returns the log of on_close calls."""
    app = App(**options)
    closed: list[tuple[str, int]] = []
    main = app.party()

    @main.before_connect
    async def authenticate(request: Request, lobby: Lobby) -> Request | Response:
        token = request.args.get("token")
        if token is None or not token.startswith("user-"):
            return Response("Unauthorized", status=401)
        request.headers["X-User-ID"] = token.removeprefix("user-")
        return request

    @main.on_connect
    async def hello(connection: Connection, ctx: ConnectContext) -> None:
        connection.send(f"Hello {ctx.request.headers['X-User-ID']} from party!")

    @main.on_message
    async def relay(message: str | bytes, sender: Connection) -> None:
        sender.room.broadcast(message, without=[sender.id])

    @main.on_close
    def gone(connection: Connection, code: int, reason: str) -> None:
        closed.append((connection.id, code))

    @main.on_request
    def info(request: Request, room: Room) -> dict[str, object]:
        return {"room": room.id, "ids": sorted(c.id for c in room.get_connections())}

    return app, closed


async def test_handshake_refused_with_401_as_the_client_sees_it() -> None:
    app, _ = chat_app()
    async with serve(app) as base:
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"ws://{base}/parties/main/r1?token=bad"):
                pass
        assert info.value.response.status_code == 401
        assert info.value.response.body == b"Unauthorized"


async def test_hook_headers_reach_on_connect_and_broadcast_skips_without() -> None:
    app, _ = chat_app()
    async with serve(app) as base:
        url = f"ws://{base}/parties/main/room"
        async with (
            connect(f"{url}?token=user-ann&_pk=a") as a,
            connect(f"{url}?token=user-bob&_pk=b") as b,
            connect(f"{url}?token=user-cy&_pk=c") as c,
        ):
            assert await a.recv() == "Hello ann from party!"
            assert await b.recv() == "Hello bob from party!"
            assert await c.recv() == "Hello cy from party!"
            await a.send("from a")
            assert await b.recv() == "from a"
            assert await c.recv() == "from a"
            await b.send(b"\x01binary")
            assert await a.recv() == b"\x01binary"
            assert await c.recv() == b"\x01binary"
            # a got only b's message, never its own
            await c.send("from c")
            assert await a.recv() == "from c"
            r = await get(f"http://{base}/parties/main/room")
            assert r.json() == {"room": "room", "ids": ["a", "b", "c"]}


async def test_rooms_and_parties_are_isolated() -> None:
    app, _ = chat_app()
    other = Party("other", app)

    @other.on_message
    def shout(message: str | bytes, sender: Connection) -> None:
        sender.room.broadcast(f"other:{message!s}")

    async with serve(app) as base:
        async with (
            connect(f"ws://{base}/parties/main/r1?token=user-a") as a1,
            connect(f"ws://{base}/parties/main/r2?token=user-b") as b2,
            connect(f"ws://{base}/parties/main/r1?token=user-c") as c1,
            connect(f"ws://{base}/parties/other/r1") as o1,
        ):
            for ws in (a1, b2, c1):
                await ws.recv()
            await a1.send("only r1")
            assert await c1.recv() == "only r1"
            await o1.send("x")
            assert await o1.recv() == "other:x"
            await b2.send("only r2")
            await c1.send("second")
            assert await a1.recv() == "second"
            # nothing leaked across rooms or parties
            for ws in (b2, o1):
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.2)


async def test_pk_is_the_connection_id() -> None:
    app, closed = chat_app()
    async with serve(app) as base:
        async with connect(f"ws://{base}/parties/main/r?token=user-a&_pk=stable-1&x=y") as ws:
            await ws.recv()
            r = await get(f"http://{base}/parties/main/r")
            assert r.json()["ids"] == ["stable-1"]
        await eventually(lambda: closed)
    assert closed == [("stable-1", 1000)]


async def test_on_close_runs_when_the_client_vanishes_without_a_close_frame() -> None:
    app, closed = chat_app()
    async with serve(app) as base:
        ws = await connect(f"ws://{base}/parties/main/r?token=user-a&_pk=vanish")
        await ws.recv()
        ws.transport.abort()  # TCP reset, no close frame
        await eventually(lambda: closed)
        assert closed == [("vanish", 1006)]
        r = await get(f"http://{base}/parties/main/r")
        assert r.json()["ids"] == []


async def test_on_message_error_goes_to_on_error_and_the_socket_stays_open() -> None:
    app = App()
    errors: list[str] = []
    main = app.party()

    @main.on_message
    def handler(message: str | bytes, sender: Connection) -> None:
        if message == "boom":
            raise ValueError("bad input")
        sender.send(f"ok {message!s}")

    @main.on_error
    def record(connection: Connection, error: BaseException) -> None:
        errors.append(str(error))

    async with serve(app) as base:
        async with connect(f"ws://{base}/party/r") as ws:
            await ws.send("boom")
            await ws.send("after")
            assert await ws.recv() == "ok after"
    assert errors == ["bad input"]


async def test_a_slow_consumer_is_closed_with_1013_and_does_not_stall_the_room() -> None:
    app, closed = chat_app(max_pending_messages=64)
    payload = base64.b64encode(os.urandom(12288)).decode()  # 16 KiB that does not compress
    async with serve(app) as base:
        url = f"ws://{base}/parties/main/room"
        # The slow client stops reading once 1 frame is buffered: TCP backs up to the server.
        slow = await connect(f"{url}?token=user-slow&_pk=slow", max_queue=1, compression=None)
        async with (
            connect(f"{url}?token=user-fast&_pk=fast") as fast,
            connect(f"{url}?token=user-sender&_pk=sender") as sender,
        ):
            await slow.recv()
            await fast.recv()
            await sender.recv()
            info_url = f"http://{base}/parties/main/room"
            sent = 0
            while "slow" in (await get(info_url)).json()["ids"]:
                assert sent < 5000, "the slow consumer was never dropped"
                for _ in range(50):
                    await sender.send(f"{sent}:{payload}")
                    # the fast peer keeps receiving everything, in order, while slow lags
                    assert (await asyncio.wait_for(fast.recv(), 5)).startswith(f"{sent}:")
                    sent += 1
            # the room dropped the slow peer and goes on
            await sender.send("after")
            assert await asyncio.wait_for(fast.recv(), 5) == "after"
        # once the slow client reads again it finds the 1013 close after what was sent
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(slow.recv(), 10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1013
        await eventually(lambda: ("slow", 1013) in closed)


async def test_messages_over_the_limit_close_with_1009() -> None:
    app, closed = chat_app(max_message_size=1000)
    async with serve(app) as base:
        async with connect(f"ws://{base}/party/r?token=user-a&_pk=big", compression=None) as ws:
            await ws.recv()
            await ws.send("y" * 1001)
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        await eventually(lambda: closed)


async def test_a_compression_bomb_is_refused_without_inflating_it() -> None:
    app, closed = chat_app()  # 1 MiB limit
    bomb = b"\x00" * (300 << 20)  # 300 MiB of zeros: ~300 KB once deflated
    async with serve(app) as base:
        async with connect(
            f"ws://{base}/party/r?token=user-a&_pk=bomb", compression="deflate", max_size=None
        ) as ws:
            await ws.recv()
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, peak
            send = asyncio.ensure_future(ws.send(bomb))
            del bomb
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 30)
            await eventually(lambda: closed, timeout=30)
            send.cancel()
            grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    # RFC 6455's "message too big", with a close frame the client reads
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    assert closed == [("bomb", 1009)]
    # Inflating the whole message would have grown the process by ~300 MiB.
    assert grown_mib < 100, f"peak memory grew by {grown_mib:.0f} MiB"


@pytest.mark.skipif(sys.platform == "win32", reason="signals")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_graceful_shutdown_closes_every_socket_with_1001(sig: signal.Signals) -> None:
    server = start_process(["examples/quickstart/app.py"], env={"TOKEN": "t0k"}, cwd=ROOT)
    try:
        url = f"ws://{server.base}/parties/main/lobby?token=t0k"
        async with connect(url) as a, connect(url) as b:
            assert await a.recv() == "Hello alice from party!"
            await b.recv()
            server.popen.send_signal(sig)
            for ws in (a, b):
                with pytest.raises(ConnectionClosed) as info:
                    await asyncio.wait_for(ws.recv(), 5)
                assert info.value.rcvd is not None and info.value.rcvd.code == 1001
        assert server.popen.wait(timeout=10) == 0
    finally:
        server.stop()
    assert "t0k" not in server.output()  # the token never reaches the access log
