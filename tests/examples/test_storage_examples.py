"""The counter and alarms examples, run as real server processes and restarted."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
from websockets.asyncio.client import connect

from partydeco.storage import RoomKey, SqliteStorage
from tests.support import ROOT, eventually, start_process

COUNTER = str(ROOT / "examples" / "counter" / "app.py")
ALARMS = str(ROOT / "examples" / "alarms" / "app.py")


async def test_counter_survives_a_server_restart(tmp_path: Path) -> None:
    server = start_process([COUNTER], cwd=tmp_path)
    try:
        async with httpx.AsyncClient() as client:
            url = f"http://{server.base}/parties/main/home"
            replies = await asyncio.gather(*(client.post(url) for _ in range(5)))
            assert sorted(r.json()["count"] for r in replies) == [1, 2, 3, 4, 5]
            page = await client.get(f"http://{server.base}/")
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert "partydeco counter" in page.text
        async with connect(f"ws://{server.base}/parties/main/home") as a, connect(
            f"ws://{server.base}/parties/main/home"
        ) as b:
            assert await a.recv() == "5"
            assert await b.recv() == "5"
            await a.send("increment")
            assert await a.recv() == "6"
            assert await b.recv() == "6"
    finally:
        server.stop()
    assert (tmp_path / ".partydeco" / "storage.db").is_file()

    server = start_process([COUNTER], cwd=tmp_path)
    try:
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://{server.base}/parties/main/home")
            assert r.json() == {"count": 6}
            r = await client.get(f"http://{server.base}/parties/main/other")
            assert r.json() == {"count": 0}
        async with connect(f"ws://{server.base}/parties/main/home") as ws:
            assert await ws.recv() == "6"
    finally:
        server.stop()


async def test_alarms_example_cleans_up_without_connections(tmp_path: Path) -> None:
    server = start_process([ALARMS], cwd=tmp_path, env={"NOTE_TTL": "0.3"})
    try:
        async with httpx.AsyncClient() as client:
            url = f"http://{server.base}/parties/main/board"
            async with connect(f"ws://{server.base}/parties/main/board") as ws:
                assert msgspec.json.decode(await ws.recv()) == {"notes": []}
                r = await client.post(url, content="first")
                assert r.json()["notes"] == ["first"]
                assert msgspec.json.decode(await asyncio.wait_for(ws.recv(), 10)) == {
                    "expired": 1
                }
            # Nobody connected now: the alarm still runs.
            await client.post(url, content="second")

            async def cleaned_twice() -> dict[str, Any] | None:
                body: dict[str, Any] = (await client.get(url)).json()
                return body if body["cleanups"] >= 2 and not body["notes"] else None

            body = await eventually(cleaned_twice, timeout=10, interval=0.02)
            assert body["cleaned_by"] == "board"
    finally:
        server.stop()


async def test_alarms_example_fires_overdue_alarm_after_restart(tmp_path: Path) -> None:
    server = start_process([ALARMS], cwd=tmp_path, env={"NOTE_TTL": "3600"})
    try:
        async with httpx.AsyncClient() as client:
            r = await client.post(f"http://{server.base}/parties/main/later", content="keep?")
            assert r.json()["notes"] == ["keep?"]
    finally:
        server.stop()
    # While the server is down the alarm comes due.
    key = RoomKey("main", "later")
    async with SqliteStorage(tmp_path / ".partydeco" / "storage.db") as backend:
        assert await backend.get_alarm(key) is not None
        await backend.set_alarm(key, time.time() - 1)

    server = start_process([ALARMS], cwd=tmp_path, env={"NOTE_TTL": "0"})
    try:
        async with SqliteStorage(tmp_path / ".partydeco" / "storage.db") as backend:

            async def alarm_cleared() -> bool:
                return await backend.get_alarm(key) is None

            # The restarted server fires the alarm on its own, before any request.
            await eventually(alarm_cleared, timeout=10, interval=0.02)
            starts = await backend.get(key, [b"starts", b"cleanups"])
            assert msgspec.msgpack.decode(starts[b"starts"]) == 2  # on_start ran again
            assert msgspec.msgpack.decode(starts[b"cleanups"]) == 1
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://{server.base}/parties/main/later")
            assert r.json()["notes"] == []
            assert r.json()["cleaned_by"] == "later"
    finally:
        server.stop()
