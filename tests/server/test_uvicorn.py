"""Uvicorn as the fast lane: ``party.run(server="uvicorn")`` and
``partydeco serve --server uvicorn`` keep Hypercorn's semantics (pings and a read
timeout, 1001 on shutdown, bounded messages, no tokens in logs)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import sys
import time
import zlib
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from partydeco import App
from partydeco.server.uvicorn import HEADER_LIMIT, HideQuery, uvicorn_config
from tests.support import ROOT, Process, eventually, free_port, start_process
from tests.support.rawws import BINARY, PING, TEXT, RawSocket, frame
from tests.support.sites import site_without

APP = str(ROOT / "tests" / "support" / "uvicorn_app.py")
QUICKSTART = str(ROOT / "examples" / "quickstart" / "app.py")


def uvicorn_app(**env: str) -> Process:
    port = free_port()
    return start_process([APP], port=port, env=env)


async def test_partydeco_serve_with_uvicorn_runs_the_quickstart() -> None:
    port = free_port()
    server = start_process(
        ["-m", "partydeco", "serve", QUICKSTART, "--port", str(port), "--server", "uvicorn"],
        port=port,
        env={"TOKEN": "secret"},
    )
    try:
        async with connect(f"ws://{server.base}/parties/main/lobby?token=secret") as ws:
            assert await ws.recv() == "Hello alice from party!"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://{server.base}/parties/main/lobby?token=wrong"):
                pass
        assert refused.value.response.status_code == 401
        assert refused.value.response.body == b"Unauthorized"
    finally:
        server.stop()
    log = server.output()
    assert "with Uvicorn" in log, log
    assert "falls back" not in log, log  # the test extra installs the fast parts
    assert "secret" not in log and "wrong" not in log, log


async def test_shutdown_closes_sockets_with_1001_and_runs_on_close() -> None:
    server = uvicorn_app()
    try:
        async with connect(f"ws://{server.base}/parties/main/room?token=secret") as ws:
            assert (await ws.recv()).startswith("hello alice")
            server.popen.terminate()
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001
            assert closed.value.rcvd.reason == "server shutting down"
        assert server.popen.wait(timeout=10) == 0
    finally:
        server.stop()
    out = server.output()
    assert "closed 1001" in out, out
    assert "run returned" in out, out  # party.run() returns; no signal raised again


async def test_a_peer_that_never_answers_the_close_holds_shutdown_within_its_timeout() -> None:
    server = uvicorn_app()  # shutdown_timeout=3
    try:
        deaf = await RawSocket.open(
            server.base, "/parties/main/room?token=secret", receive_buffer=4096
        )
        await deaf.read_frame()  # hello; from now on it reads nothing and answers nothing
        started = time.monotonic()
        server.popen.terminate()
        assert server.popen.wait(timeout=15) == 0
        assert time.monotonic() - started < 3 + 1.5
        deaf.close()
    finally:
        server.stop()
    assert "closed 1001" in server.output()


async def test_tokens_stay_out_of_the_access_log_for_every_url() -> None:
    server = uvicorn_app()
    try:
        async with httpx.AsyncClient() as client:
            room = await client.get(f"http://{server.base}/parties/main/room?token=secret")
            assert room.json()["room"] == "room"
            plain = await client.get(f"http://{server.base}/plain?token=secret&x=1")
            assert plain.text == "plain"
        async with connect(f"ws://{server.base}/parties/main/room?token=secret") as ws:
            await ws.recv()
    finally:
        server.stop()
    log = server.output()
    assert '"GET /parties/main/room HTTP/1.1" 200' in log, log
    assert '"GET /plain HTTP/1.1" 200' in log, log
    assert '"WebSocket /parties/main/room" [accepted]' in log, log
    assert "secret" not in log and "?" not in log.replace("(CTRL + C to quit)", ""), log


def _data_segments_in(sock: socket.socket) -> int:
    """Segments with data this socket received (``tcpi_data_segs_in``, Linux 4.6+)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("I", info, 152)[0])


@pytest.mark.skipif(sys.platform != "linux", reason="reads Linux's TCP_INFO")
async def test_a_response_leaves_in_one_tcp_segment() -> None:
    """Head and body in one write (``HeldHead``), where Uvicorn alone makes two."""
    server = uvicorn_app()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            for path in ("/parties/main/room?token=secret", "/plain"):
                before = _data_segments_in(sock)
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
                response = b""
                while b"\r\n\r\n" not in response or not response.endswith((b"}", b"plain")):
                    response += await asyncio.to_thread(sock.recv, 65536)
                assert response.startswith(b"HTTP/1.1 200 OK\r\n"), response
                assert _data_segments_in(sock) - before == 1, path
    finally:
        server.stop()


async def test_a_head_whose_body_waits_still_reaches_the_client_at_once() -> None:
    """The head is held only for the turn of the loop it was written in
    (``HeldHead``): a streamed response whose body waits still sends its status."""
    server = uvicorn_app()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            async with client.stream("GET", f"http://{server.base}/slow") as slow:
                assert slow.status_code == 200  # the head came before the body exists
                assert (await client.post(f"http://{server.base}/release")).text == "released"
                assert await slow.aread() == b"late"
    finally:
        server.stop()


async def test_uvicorn_does_not_take_the_client_address_from_headers() -> None:
    """Only partydeco's ``trusted_proxies`` decide (on party URLs); Uvicorn's own
    proxy-header handling, on by default, is off."""
    server = uvicorn_app()
    try:
        async with httpx.AsyncClient() as client:
            r = await client.get(
                f"http://{server.base}/plain", headers={"X-Forwarded-For": "203.0.113.9"}
            )
            assert r.text == "plain"
    finally:
        server.stop()
    log = server.output()
    assert "127.0.0.1:" in log and "203.0.113.9" not in log, log


async def test_a_compressed_message_inflating_past_the_limit_is_refused_with_1009() -> None:
    server = uvicorn_app()
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = (deflate.compress(b"\x00" * 20_000_000) + deflate.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert len(bomb) < 30_000  # 20 MB once inflated; the app's limit is 64 KiB
    try:
        raw = await RawSocket.open(
            server.base, "/parties/main/room?token=secret", extensions="permessage-deflate"
        )
        assert "permessage-deflate" in raw.response_head
        await raw.read_frame()  # hello
        rss_before = _rss(server.popen.pid)
        await raw.send_frame(BINARY, bomb, rsv1=True)
        assert await raw.close_code(timeout=10) == 1009
        raw.close()
        assert _rss(server.popen.pid) - rss_before < 10 * 1024 * 1024
        # the server goes on serving
        async with connect(f"ws://{server.base}/parties/main/room?token=secret") as ws:
            await ws.recv()
            await ws.send(b"x" * 1000)
            assert await ws.recv() == "1000 bytes"
    finally:
        server.stop()
    assert "closed 1009" in server.output()


async def test_pings_from_a_peer_that_never_reads_cost_no_memory() -> None:
    """200,000 pings answered in full would leave 25 MB of pongs in the server."""
    server = uvicorn_app()
    try:
        raw = await RawSocket.open(
            server.base, "/parties/main/room?token=secret", receive_buffer=4096
        )
        rss_before = _rss(server.popen.pid)
        ping = frame(PING, b"p" * 125)
        for _ in range(200):
            await raw.send_raw(ping * 1000)
        await raw.send_frame(TEXT, b"mark")
        await eventually(lambda: "marked" in _peek(server), timeout=30, message="not read")
        assert _rss(server.popen.pid) - rss_before < 10 * 1024 * 1024
        raw.close()
        async with connect(f"ws://{server.base}/parties/main/room?token=secret") as ws:
            assert (await ws.recv()).startswith("hello")
    finally:
        server.stop()


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_a_peer_that_answers_no_ping_is_dropped_after_the_read_timeout() -> None:
    server = uvicorn_app(READ_TIMEOUT="3", PING_INTERVAL="1")
    try:
        silent = await RawSocket.open(server.base, "/parties/main/room?token=secret")
        async with connect(f"ws://{server.base}/parties/main/room?token=secret") as alive:
            await alive.recv()
            # the raw socket reads but never answers a ping: the server gives up on it
            assert await silent.close_code(timeout=10) == 1011
            silent.close()
            await eventually(lambda: "closed" in _peek(server), message="no on_close")
            # the other client answered every ping and stays
            await alive.send("still here")
            assert await alive.recv() == "still here"
    finally:
        server.stop()


def _peek(server: Process) -> str:
    """What the server printed so far, without waiting for it to exit."""
    assert server.popen.stdout is not None
    os.set_blocking(server.popen.stdout.fileno(), False)
    data = server.popen.stdout.read()
    if data:
        server.peeked = getattr(server, "peeked", "") + data.decode(errors="replace")
    return getattr(server, "peeked", "")


async def test_headers_must_arrive_in_time_and_fit_the_limit() -> None:
    server = uvicorn_app(READ_TIMEOUT="1", PING_INTERVAL="0.5")
    try:
        host, port = server.base.split(":")
        # a client that never finishes its request line is dropped
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /parties/main/room?token=secret HTTP/1.1\r\nHost: x\r\n")
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        # headers over the limit get 431 and the connection ends
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /plain HTTP/1.1\r\nHost: x\r\n")
        for _ in range(HEADER_LIMIT // 1000 + 2):
            writer.write(b"X-Filler: " + b"a" * 990 + b"\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
        writer.close()
        # a keep-alive connection gets the whole timeout again for its next request,
        # and a large body is not counted as headers
        async with httpx.AsyncClient() as client:
            for _ in range(2):
                r = await client.post(
                    f"http://{server.base}/parties/main/room?token=secret",
                    content=b"b" * (HEADER_LIMIT * 3),
                )
                assert r.status_code == 200
    finally:
        server.stop()


async def test_a_keep_alive_client_dribbling_its_next_headers_is_cut_at_the_read_timeout() -> None:
    server = uvicorn_app(READ_TIMEOUT="1", PING_INTERVAL="0.5")
    try:
        host, port = server.base.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"plain")).startswith(b"HTTP/1.1 200 ")
        answered = time.monotonic()

        async def dribble() -> None:  # a slowloris: a header byte every 0.1 s
            writer.write(b"GET /plain HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            while not writer.is_closing():
                writer.write(b"a")
                await asyncio.sleep(0.1)

        dribbling = asyncio.create_task(dribble())
        try:
            assert await asyncio.wait_for(reader.read(), 10) == b""
        finally:
            dribbling.cancel()
            writer.close()
        assert time.monotonic() - answered < 1 + 1.5
    finally:
        server.stop()


async def test_workers_share_the_port() -> None:
    server = uvicorn_app(WORKERS="2")
    try:
        pids: set[str] = set()

        async def both_answered() -> bool:
            async with connect(f"ws://{server.base}/parties/main/room?token=secret") as ws:
                pids.add(str(await ws.recv()).split()[-1])
            return len(pids) == 2

        await eventually(both_answered, timeout=20, message=f"one worker only: {pids}")
    finally:
        server.stop()
    assert server.popen.returncode == 0


def test_unknown_options_and_a_short_read_timeout_are_refused() -> None:
    with pytest.raises(TypeError, match="unknown Uvicorn option"):
        uvicorn_config(App(), no_such_option=1)
    with pytest.raises(ValueError, match="read_timeout"):
        uvicorn_config(App(), read_timeout=10, ws_ping_interval=20)
    with pytest.raises(ValueError, match="server must be one of"):
        App().run(server="gunicorn")


def test_hide_query_cuts_queries_from_uvicorn_access_lines() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api?token=secret", "1.1", 200), None,
    )  # fmt: skip
    assert HideQuery().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /api HTTP/1.1" 200'


async def test_without_websockets_uvicorn_warns_and_turns_deflate_off(tmp_path: Path) -> None:
    view = site_without("websockets", tmp_path)
    port = free_port()
    server = start_process(["-S", APP], port=port, env={"PYTHONPATH": f"{ROOT}{os.pathsep}{view}"})
    try:
        raw = await RawSocket.open(
            server.base, "/parties/main/room?token=secret", extensions="permessage-deflate"
        )
        assert "permessage-deflate" not in raw.response_head
        assert (await raw.read_frame())[1].startswith(b"hello alice")
        raw.close()
    finally:
        server.stop()
    log = server.output()
    assert "Uvicorn falls back to wsproto" in log, log
    assert "pip install 'partydeco[uvicorn]'" in log, log


async def test_without_httptools_the_header_deadline_holds_on_h11(tmp_path: Path) -> None:
    view = site_without("httptools", tmp_path)
    port = free_port()
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{view}", "READ_TIMEOUT": "1", "PING_INTERVAL": "0.5"}
    server = start_process(["-S", APP], port=port, env=env)
    try:
        host, _ = server.base.split(":")
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"plain")).startswith(b"HTTP/1.1 200 ")
        writer.write(b"GET /plain HTTP/1.1\r\nHost: x\r\n")  # the next headers never end
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
    finally:
        server.stop()
    log = server.output()
    assert "Uvicorn falls back to h11" in log, log
