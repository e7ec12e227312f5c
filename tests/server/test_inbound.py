"""What a client's frames may cost, through a real Hypercorn and real (or raw) clients:
message size in bytes, unfinished messages (budget and timeout), pings and pongs counted
against the message rate, and a close frame where wsproto gives up."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import zlib

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from partydeco.testing import TestClient
from tests.support import ROOT, eventually, serve
from tests.support.rawws import CONTINUATION, PING, TEXT, RawSocket
from tests.support.security_kit import relay_app


async def test_text_size_counts_utf8_bytes_on_hypercorn() -> None:
    app, closes = relay_app(max_message_size=1000)
    async with serve(app) as base:
        async with connect(f"ws://{base}/parties/main/r1", compression=None) as ws:
            assert await ws.recv() == "hello"
            await ws.send("echo:" + "é" * 497)  # 999 bytes, 502 characters
            assert len(await ws.recv()) == 502
            await ws.send("echo:" + "é" * 498)  # 1001 bytes
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        await eventually(lambda: closes == [(1009, "message too big")])


async def test_text_size_counts_utf8_bytes_without_hypercorn() -> None:
    app, _ = relay_app(max_message_size=1000)
    async with TestClient(app) as client, client.connect("r1") as ws:
        assert await ws.receive() == "hello"
        await ws.send("echo:" + "😀" * 248)  # 997 bytes
        assert len(await ws.receive()) == 253
        await ws.send("echo:" + "😀" * 249)  # 1001 bytes, 254 characters
        assert (await ws.wait_closed())[0] == 1009


async def test_an_unfinished_message_times_out_with_1008() -> None:
    """A client that keeps a message unfinished (one byte now and then) is closed once
    message_timeout passes, although it is never silent for long."""
    app, closes = relay_app(message_timeout=1.0)
    async with serve(app) as base:
        ws = await RawSocket.open(base, "/parties/main/r1")
        assert await ws.read_frame() == (TEXT, b"hello")
        started = time.monotonic()
        await ws.send_frame(TEXT, b"x", fin=False)

        async def trickle() -> None:
            while True:
                await asyncio.sleep(0.2)  # the attacker's pace: one byte every 0.2 s
                await ws.send_frame(CONTINUATION, b"x", fin=False)

        dripping = asyncio.create_task(trickle())
        try:
            assert await ws.close_code(timeout=10) == 1008
        finally:
            dripping.cancel()
        elapsed = time.monotonic() - started
        ws.close()
        await eventually(lambda: closes == [(1008, "message not finished in time")])
    assert 0.9 < elapsed < 3, elapsed


async def test_a_finished_message_resets_the_timeout() -> None:
    app, closes = relay_app(message_timeout=0.5)
    async with serve(app) as base:
        ws = await RawSocket.open(base, "/parties/main/r1")
        assert await ws.read_frame() == (TEXT, b"hello")
        for _ in range(4):  # four messages, each finished within the timeout
            await ws.send_frame(TEXT, b"echo:", fin=False)
            await ws.send_frame(CONTINUATION, b"ok", fin=True)
            assert await asyncio.wait_for(ws.read_frame(), 5) == (TEXT, b"echo:ok")
            await asyncio.sleep(0.2)  # the client's pace
        ws.close()
        await eventually(lambda: bool(closes))
    assert closes[0][0] != 1008


async def test_unfinished_messages_share_a_process_budget() -> None:
    app, closes = relay_app(max_unfinished_bytes=1 << 20)
    async with serve(app) as base:
        sockets = [await RawSocket.open(base, f"/parties/main/r{i}") for i in range(3)]
        try:
            for ws in sockets:
                assert await ws.read_frame() == (TEXT, b"hello")
            for ws in sockets[:2]:  # 800 KB held
                await ws.send_frame(TEXT, b"echo:" + b"x" * 399_995, fin=False)
            assert app.runtime is not None
            budget = app.runtime.unfinished
            await eventually(lambda: budget.held == 800_000)
            third = sockets[2]
            await third.send_frame(TEXT, b"x" * 400_000, fin=False)  # over 1 MiB in all
            assert await third.close_code() == 1013
            await eventually(lambda: (1013, "too many unfinished messages") in closes)
            # finishing a message gives its bytes back: a newcomer fits again
            await sockets[0].send_frame(CONTINUATION, b"", fin=True)
            opcode, payload = await asyncio.wait_for(sockets[0].read_frame(), 5)
            assert (opcode, len(payload)) == (TEXT, 400_000)
            assert budget.held == 400_000
            late = await RawSocket.open(base, "/parties/main/late")
            sockets.append(late)
            assert await late.read_frame() == (TEXT, b"hello")
            await late.send_frame(TEXT, b"echo:" + b"y" * 300_000, fin=False)
            await late.send_frame(CONTINUATION, b"", fin=True)
            opcode, payload = await asyncio.wait_for(late.read_frame(), 5)
            assert (opcode, len(payload)) == (TEXT, 300_005)
        finally:
            for ws in sockets:
                ws.close()


def _flooder(base: str, kind: str) -> list[str]:
    return [sys.executable, str(ROOT / "tests" / "support" / "ping_flooder.py"), base, kind]


@pytest.mark.parametrize("kind", ["ping", "pong"])
async def test_a_control_frame_flood_closes_with_1008_and_others_stay_fast(kind: str) -> None:
    """One socket floods pings (or pongs) from another process; it is closed with 1008
    once over the message rate, and meanwhile other clients' round trips and
    handshakes stay fast."""
    app, closes = relay_app(max_messages_per_second=200, message_burst=1000)
    async with serve(app) as base:
        url = f"ws://{base}/parties/main/calm"
        async with connect(url, max_queue=None) as calm:
            assert await calm.recv() == "hello"
            flooder = await asyncio.create_subprocess_exec(
                *_flooder(base, kind), stdout=asyncio.subprocess.PIPE
            )
            assert flooder.stdout is not None
            try:
                async with asyncio.timeout(10):
                    assert await flooder.stdout.readline() == b"open\n"
                latencies = []
                for i in range(20):
                    started = time.monotonic()
                    await calm.send(f"echo:{i}")
                    assert await asyncio.wait_for(calm.recv(), 5) == f"echo:{i}"
                    latencies.append(time.monotonic() - started)
                started = time.monotonic()
                async with connect(f"ws://{base}/parties/main/other") as other:
                    assert await other.recv() == "hello"
                handshake = time.monotonic() - started
                async with asyncio.timeout(10):
                    report = json.loads(await flooder.stdout.readline())
            finally:
                if flooder.returncode is None:
                    flooder.kill()
                await flooder.wait()
        await eventually(lambda: (1008, "message rate exceeded") in closes)
    assert report["close"] == 1008, report
    assert report["sent"] > 1000  # it did flood past the burst
    assert max(latencies) < 0.5, latencies
    assert handshake < 0.5, handshake


async def test_pings_within_the_rate_are_answered() -> None:
    app, closes = relay_app(max_messages_per_second=200, message_burst=1000)
    async with serve(app) as base:
        ws = await RawSocket.open(base, "/parties/main/r1")
        assert await ws.read_frame() == (TEXT, b"hello")
        for i in range(5):
            await ws.send_frame(PING, b"p%d" % i)
            assert await asyncio.wait_for(ws.read_frame(), 5) == (0xA, b"p%d" % i)
        # pings that arrive together get one pong, for the last of them
        await ws.send_raw(b"".join(_ping(b"q%d" % i) for i in range(50)))
        assert await asyncio.wait_for(ws.read_frame(), 5) == (0xA, b"q49")
        await ws.send_frame(TEXT, b"echo:still open")
        assert await asyncio.wait_for(ws.read_frame(), 5) == (TEXT, b"echo:still open")
        ws.close()
        await eventually(lambda: bool(closes))


def _ping(payload: bytes) -> bytes:
    from tests.support.rawws import frame

    return frame(PING, payload)


async def test_a_compression_bomb_closes_with_1009_and_a_close_frame() -> None:
    app, closes = relay_app()  # 1 MiB
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = (bomb.compress(b"\x00" * (50 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH))[:-4]
    async with serve(app) as base:
        ws = await RawSocket.open(base, "/parties/main/r1", extensions="permessage-deflate")
        assert "permessage-deflate" in ws.response_head
        assert await ws.read_frame() == (TEXT, b"hello")
        await ws.send_frame(0x2, payload, rsv1=True)
        assert await ws.close_code() == 1009
        ws.close()
        await eventually(lambda: closes == [(1009, "message too big")])


async def test_invalid_utf8_gets_a_close_frame_with_1007() -> None:
    app, closes = relay_app()
    async with serve(app) as base:
        ws = await RawSocket.open(base, "/parties/main/r1")
        assert await ws.read_frame() == (TEXT, b"hello")
        await ws.send_frame(TEXT, b"\xff\xfe")
        assert await ws.close_code() == 1007
        ws.close()
        await eventually(lambda: closes == [(1007, "invalid frame payload")])
