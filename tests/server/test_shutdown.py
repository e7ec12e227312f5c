"""Stopping a server whatever its peers do: within ``shutdown_timeout`` of the signal, every
socket closed with 1001 (those that never answer dropped), a second signal exits at once,
no traceback per socket; the same under ``hypercorn app:party`` and under Uvicorn."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support import ROOT, free_port
from tests.support.rawws import TEXT, RawSocket

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals")

SHUTDOWN_TIMEOUT = 2.0


def spawn(command: list[str], port: int, options: dict[str, object]) -> subprocess.Popen[bytes]:
    """``python *command*`` in its own session, so that a Ctrl+C can be sent to its
    process group alone."""
    env = {
        **os.environ,
        "PORT": str(port),
        "PYTHONPATH": str(ROOT),
        "PRESSURE_OPTIONS": json.dumps({"shutdown_timeout": SHUTDOWN_TIMEOUT, **options}),
    }
    return subprocess.Popen(
        [sys.executable, *command], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


@asynccontextmanager
async def server(
    command: list[str], port: int, **options: object
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The pressure app served by *command*; killed if still running at the end."""
    popen = spawn(command, port, options)
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    await http.get(f"http://127.0.0.1:{port}/parties/main/ready")
                    break
                except httpx.TransportError:
                    assert popen.poll() is None, popen.communicate()[0].decode()
                    await asyncio.sleep(0.1)
        yield popen
    finally:
        if popen.poll() is None:
            os.killpg(popen.pid, signal.SIGKILL)
        popen.communicate()


def output(popen: subprocess.Popen[bytes]) -> str:
    out, _ = popen.communicate(timeout=15)
    return out.decode(errors="replace")


async def exited(popen: subprocess.Popen[bytes], within: float) -> float:
    """Seconds until *popen* exited; fails after *within*."""
    started = time.monotonic()
    while popen.poll() is None:
        assert time.monotonic() - started < within, f"still running after {within} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def mute_sockets(base: str, count: int) -> list[RawSocket]:
    """Sockets that complete the handshake, then never answer anything (nor read)."""
    sockets = []
    for i in range(count):
        ws = await RawSocket.open(base, f"/parties/main/r{i % 10}", receive_buffer=4096)
        assert await ws.read_frame() == (TEXT, b"hello")
        sockets.append(ws)
    return sockets


async def answering(base: str) -> ClientConnection:
    ws = await connect(f"ws://{base}/parties/main/r0")
    assert await ws.recv() == "hello"
    return ws


async def close_code(ws: ClientConnection, timeout: float) -> int | None:
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), timeout)
    return info.value.rcvd.code if info.value.rcvd is not None else None


SERVE = ["-m", "tests.support.pressure_app"]


async def test_shutdown_ends_within_shutdown_timeout_whatever_the_peers_do() -> None:
    """The issue's finding 9: with peers that never answer the close, SIGTERM took 12 s
    against a 5 s shutdown_timeout, with a CancelledError traceback per socket."""
    port = free_port()
    base = f"127.0.0.1:{port}"
    async with server(SERVE, port) as popen:
        mute = await mute_sockets(base, 100)
        polite = [await answering(base) for _ in range(5)]
        popen.send_signal(signal.SIGTERM)
        started = time.monotonic()
        codes = [await close_code(ws, 2) for ws in polite]
        answered = time.monotonic() - started
        took = await exited(popen, SHUTDOWN_TIMEOUT + 3)
        text = output(popen)
        for ws in mute:
            ws.close()
    assert codes == [1001] * 5
    assert answered < 1.0, answered
    assert took < SHUTDOWN_TIMEOUT + 1.0, took
    assert popen.returncode == 0, text
    assert "Traceback" not in text and "CancelledError" not in text, text[-3000:]
    assert "dropping 100 sockets that did not answer the close" in text


async def test_a_second_signal_exits_at_once() -> None:
    port = free_port()
    base = f"127.0.0.1:{port}"
    async with server(SERVE, port, shutdown_timeout=30.0) as popen:
        mute = await mute_sockets(base, 5)
        popen.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)  # the first signal's shutdown is under way
        assert popen.poll() is None
        popen.send_signal(signal.SIGTERM)
        took = await exited(popen, 2)
        text = output(popen)
        for ws in mute:
            ws.close()
    assert took < 1.0, took
    assert popen.returncode == 128 + signal.SIGTERM, text
    assert "SIGTERM again, exiting now" in text


HYPERCORN = ["-m", "hypercorn", "tests.support.pressure_app:app", "--graceful-timeout", "5"]


async def test_ctrl_c_under_the_hypercorn_cli_closes_sockets_at_once_and_quietly() -> None:
    """Under ``hypercorn app:party`` partydeco hears of the stop when Hypercorn's worker
    begins it, not at lifespan shutdown (after Hypercorn's graceful timeout)."""
    port = free_port()
    base = f"127.0.0.1:{port}"
    command = [*HYPERCORN, "--bind", base]
    async with server(command, port) as popen:
        mute = await mute_sockets(base, 20)
        polite = await answering(base)
        os.killpg(popen.pid, signal.SIGINT)  # Ctrl+C: the whole process group
        started = time.monotonic()
        assert await close_code(polite, 4) == 1001
        answered = time.monotonic() - started
        took = await exited(popen, SHUTDOWN_TIMEOUT + 4)
        text = output(popen)
        for ws in mute:
            ws.close()
    assert answered < 1.0, answered  # Hypercorn alone: after its 5 s graceful timeout
    assert took < SHUTDOWN_TIMEOUT + 1.5, took
    assert "Traceback" not in text and "CancelledError" not in text, text[-3000:]


async def test_a_second_ctrl_c_under_the_hypercorn_cli_exits_at_once() -> None:
    port = free_port()
    base = f"127.0.0.1:{port}"
    command = [*HYPERCORN, "--bind", base]
    async with server(command, port, shutdown_timeout=30.0) as popen:
        mute = await mute_sockets(base, 5)
        os.killpg(popen.pid, signal.SIGINT)
        await asyncio.sleep(0.8)  # Hypercorn's worker polls for the stop every 0.1 s
        assert popen.poll() is None
        os.killpg(popen.pid, signal.SIGINT)
        took = await exited(popen, 3)
        text = output(popen)
        for ws in mute:
            ws.close()
    assert took < 1.5, took
    assert "SIGINT again, exiting now" in text
