"""permessage-deflate on a real Hypercorn: a broadcast is compressed once for all its
receivers, whatever each negotiated, and inflated bytes count against a per-socket
byte budget, so a small compressed stream cannot buy unbounded work."""

from __future__ import annotations

import asyncio
import time
import zlib

from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from partydeco.server.wsproto_deflate import STATS
from tests.support import eventually, serve
from tests.support.rawws import BINARY, TEXT, RawSocket
from tests.support.security_kit import relay_app


async def _drain(ws: RawSocket) -> None:
    while True:
        await ws.read_frame()


async def test_every_offer_is_answered_without_server_context_takeover() -> None:
    app, _ = relay_app()
    async with serve(app) as base:
        async with connect(f"ws://{base}/parties/main/r1", compression="deflate") as ws:
            assert await ws.recv() == "hello"
            accepted = ws.response.headers["Sec-WebSocket-Extensions"]
    assert accepted.startswith("permessage-deflate")
    assert "server_no_context_takeover" in accepted


async def test_a_broadcast_is_compressed_once_for_all_receivers() -> None:
    app, _ = relay_app()
    message = "".join(f"line {i}: the quick brown fox\n" for i in range(2000))  # ~60 KB
    narrow = ClientPerMessageDeflateFactory(server_max_window_bits=10)
    async with serve(app) as base:
        url = f"ws://{base}/parties/main/busy"
        receivers = [await connect(url, compression="deflate", max_size=None) for _ in range(20)]
        receivers += [await connect(url, compression=None, max_size=None) for _ in range(5)]
        receivers += [await connect(url, extensions=[narrow], compression=None, max_size=None)]
        for ws in receivers:
            assert await ws.recv() == "hello"
        async with connect(url, compression=None, max_size=None) as sender:
            assert await sender.recv() == "hello"
            framed, compressed = STATS["framed"], STATS["compressed"]
            await sender.send(message)
            for ws in receivers:
                assert await asyncio.wait_for(ws.recv(), 5) == message
            # one compressed frame per window size (15 and 10), one plain frame
            assert STATS["compressed"] - compressed == 2
            assert STATS["framed"] - framed == 3
        for ws in receivers:
            await ws.close()


async def test_short_messages_go_uncompressed_and_long_ones_compressed() -> None:
    app, _ = relay_app()
    async with serve(app) as base:
        url = "/parties/main/r1"
        raw = await RawSocket.open(base, url, extensions="permessage-deflate")
        assert "server_no_context_takeover" in raw.response_head
        assert await raw.read_frame() == (TEXT, b"hello")  # RSV1 clear: not compressed
        async with connect(f"ws://{base}{url}", compression=None) as sender:
            await sender.recv()
            await sender.send(b"z" * 5000)
            b0, b1 = await raw.reader.readexactly(2)
            assert b0 == 0x80 | 0x40 | BINARY  # FIN, RSV1 (compressed), binary
            size = b1 & 0x7F
            payload = await raw.reader.readexactly(size)
            inflated = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
            assert inflated == b"z" * 5000
        raw.close()


async def test_a_small_compressed_stream_cannot_buy_unbounded_work() -> None:
    """The issue's third finding: 20 frames a second of ~1 KB, each inflating to 1 MB,
    relayed to 20 receivers pinned the server. The sender now runs out of its byte
    budget (max_bytes_per_second) and is closed with 1008, while another room's
    handshake stays fast."""
    app, closes = relay_app()  # 1 MiB/s, a burst of 8 MiB
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = (deflate.compress(b"\x00" * 1_000_000) + deflate.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert len(bomb) < 1100
    async with serve(app) as base:
        # receivers that read and drop what they get (their own inflating would cost this
        # process, which also runs the server)
        receivers = [
            await RawSocket.open(base, "/parties/main/relay", extensions="permessage-deflate")
            for _ in range(20)
        ]
        draining = [asyncio.create_task(_drain(ws)) for ws in receivers]
        attacker = await RawSocket.open(
            base, "/parties/main/relay", extensions="permessage-deflate; client_no_context_takeover"
        )
        await attacker.read_frame()  # hello
        started = time.monotonic()

        async def attack() -> None:
            while True:  # 20 frames a second, each under 1.1 KB on the wire
                await attacker.send_frame(BINARY, bomb, rsv1=True)
                await asyncio.sleep(0.05)

        attacking = asyncio.create_task(attack())
        try:
            await asyncio.sleep(0.2)
            before = time.monotonic()
            async with connect(f"ws://{base}/parties/main/elsewhere") as other:
                assert await other.recv() == "hello"
            handshake = time.monotonic() - before
            assert await attacker.close_code(timeout=10) == 1008
            closed_after = time.monotonic() - started
        finally:
            attacking.cancel()
            attacker.close()
            for task in draining:
                task.cancel()
            for ws in receivers:
                ws.close()
        await eventually(lambda: (1008, "byte rate exceeded") in closes)
    assert handshake < 0.5, handshake
    assert closed_after < 3, closed_after  # 8 MiB of burst at ~20 MB/s
