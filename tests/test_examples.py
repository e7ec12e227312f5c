"""The examples, run as a user runs them: a real process, real clients."""

from __future__ import annotations

import asyncio

import httpx
import msgspec
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from .helpers import start_process


async def test_quickstart() -> None:
    server = start_process(["examples/quickstart/app.py"], env={"TOKEN": "secret"})
    try:
        url = f"ws://{server.base}/parties/main/lobby"
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"{url}?token=wrong"):
                pass
        assert info.value.response.status_code == 401
        async with connect(f"{url}?token=secret") as a, connect(f"{url}?token=secret") as b:
            assert await a.recv() == "Hello alice from party!"
            assert await b.recv() == "Hello alice from party!"
            await a.send("hi")
            assert await b.recv() == "hi"
            async with httpx.AsyncClient() as client:
                r = await client.get(f"http://{server.base}/parties/main/lobby")
            assert r.json() == {"room": "lobby", "connections": 2}
    finally:
        server.stop()


async def test_chat() -> None:
    server = start_process(["examples/chat/app.py"])
    try:
        url = f"ws://{server.base}/parties/chat/general"
        with pytest.raises(InvalidStatus) as info:
            async with connect(url):
                pass
        assert info.value.response.status_code == 400
        async with connect(f"{url}?name=ann") as ann:
            await ann.send("first")
            assert msgspec.json.decode(await ann.recv())["text"] == "first"
            async with connect(f"{url}?name=bob") as bob:
                # bob gets the history, ann learns that bob joined
                assert msgspec.json.decode(await bob.recv()) == {
                    "type": "message",
                    "name": "ann",
                    "text": "first",
                }
                assert msgspec.json.decode(await ann.recv()) == {"type": "join", "name": "bob"}
                async with httpx.AsyncClient() as client:
                    r = await client.get(f"http://{server.base}/parties/chat/general")
                assert r.json() == {"room": "general", "users": ["ann", "bob"]}
                await bob.send("hello ann")
                for ws in (ann, bob):
                    assert msgspec.json.decode(await asyncio.wait_for(ws.recv(), 5)) == {
                        "type": "message",
                        "name": "bob",
                        "text": "hello ann",
                    }
            assert msgspec.json.decode(await ann.recv()) == {"type": "leave", "name": "bob"}
    finally:
        server.stop()
