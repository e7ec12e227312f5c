"""The examples, run as a user runs them: a real process, real clients."""

from __future__ import annotations

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support import start_process


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
                refused = await client.get(f"http://{server.base}/parties/main/lobby")
                r = await client.get(f"http://{server.base}/parties/main/lobby?token=secret")
            assert (refused.status_code, refused.text) == (401, "Unauthorized")
            assert r.json() == {"room": "lobby", "connections": 2}
    finally:
        server.stop()
