"""The ways to run an app: the console script, dev reload, workers, Uvicorn."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support import ROOT, free_port, start_process

QUICKSTART = str(ROOT / "examples" / "quickstart" / "app.py")


async def greet(base: str) -> str:
    async with connect(f"ws://{base}/parties/main/lobby?token=secret") as ws:
        return str(await ws.recv())


async def test_partydeco_serve_module_and_path() -> None:
    port = free_port()
    server = start_process(
        ["-m", "partydeco", "serve", "app:party", "--port", str(port)],
        port=port,
        env={"TOKEN": "secret"},
        cwd=ROOT / "examples" / "quickstart",
    )
    try:
        assert await greet(server.base) == "Hello alice from party!"
    finally:
        server.stop()
    port = free_port()
    server = start_process(
        ["-m", "partydeco", "serve", QUICKSTART, "--port", str(port)],
        port=port,
        env={"TOKEN": "secret"},
    )
    try:
        assert await greet(server.base) == "Hello alice from party!"
    finally:
        server.stop()


async def test_partydeco_serve_reports_a_bad_target() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "partydeco",
        "serve",
        "no_such_module:party",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={"PYTHONPATH": str(ROOT)},
    )
    out, _ = await process.communicate()
    assert process.returncode != 0
    assert b"cannot import 'no_such_module'" in out


async def test_workers_share_the_port() -> None:
    port = free_port()
    server = start_process(
        ["-m", "partydeco", "serve", QUICKSTART, "--port", str(port), "--workers", "2"],
        port=port,
        env={"TOKEN": "secret"},
    )
    try:
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://{server.base}/parties/main/lobby?token=secret")
            assert r.status_code == 200
        assert await greet(server.base) == "Hello alice from party!"
        children = Path(f"/proc/{server.popen.pid}/task/{server.popen.pid}/children")
        assert len(children.read_text().split()) == 2
    finally:
        server.stop()
    assert server.popen.returncode == 0
    assert "2 worker processes" in server.output()


async def test_runs_under_uvicorn() -> None:
    port = free_port()
    server = start_process(
        ["-m", "uvicorn", "app:party", "--port", str(port), "--ws-per-message-deflate", "false"],
        port=port,
        env={"TOKEN": "secret"},
        cwd=ROOT / "examples" / "quickstart",
    )
    try:
        assert await greet(server.base) == "Hello alice from party!"
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"ws://{server.base}/parties/main/lobby?token=no"):
                pass
        assert info.value.response.status_code == 401
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://{server.base}/parties/main/lobby?token=secret")
        assert r.json() == {"room": "lobby", "connections": 0}
        async with connect(f"ws://{server.base}/parties/main/lobby?token=secret") as ws:
            assert await ws.recv() == "Hello alice from party!"
            server.popen.terminate()
            # partydeco hears the signal before Uvicorn closes the sockets (with 1012)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    finally:
        server.stop()
    log = server.output()
    # Uvicorn logs each request's path and query; partydeco hides the query from it
    assert '"WebSocket /parties/main/lobby" [accepted]' in log, log
    assert '"GET /parties/main/lobby HTTP/1.1" 200' in log, log
    assert "token=" not in log and "secret" not in log, log


async def test_runs_under_the_hypercorn_cli() -> None:
    port = free_port()
    server = start_process(
        ["-m", "hypercorn", "app:party", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "1"],
        port=port,
        env={"TOKEN": "secret"},
        cwd=ROOT / "examples" / "quickstart",
    )
    try:
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"ws://{server.base}/parties/main/lobby?token=no"):
                pass
        assert info.value.response.status_code == 401
        async with connect(f"ws://{server.base}/parties/main/lobby?token=secret") as ws:
            assert await ws.recv() == "Hello alice from party!"
            server.popen.terminate()
            # Hypercorn's CLI cancels connections after its graceful timeout;
            # partydeco then closes each socket with 1001.
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    finally:
        server.stop()
