"""bench/app.py works: the shared harness's protocol, with RS256 JWTs checked on every arrival."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support import start_process


async def test_the_bench_app_speaks_the_harness_protocol_with_verified_tokens() -> None:
    server = start_process(["bench/app.py"], ready_path="/.well-known/jwks.json")
    try:
        http = httpx.AsyncClient(base_url=f"http://{server.base}")
        keys = (await http.get("/.well-known/jwks.json")).json()["keys"]
        assert [k["kty"] for k in keys] == ["RSA"] and "d" not in keys[0]
        url = f"ws://{server.base}/parties/main/smoke"
        async with (
            connect(f"{url}?_pk=a&token=bench-token") as a,
            connect(f"{url}?_pk=b&token=bench-token") as b,
        ):
            assert await a.recv() == "hello"
            assert await b.recv() == "hello"
            await a.send("echo:x")
            assert await asyncio.wait_for(a.recv(), 5) == "echo:x"
            await a.send("to b")
            assert await asyncio.wait_for(b.recv(), 5) == "to b"
            info = await http.get(
                "/parties/main/smoke", headers={"Authorization": "Bearer bench-token"}
            )
            assert info.status_code == 200
            assert json.loads(info.text) == {"room": "smoke", "connections": 2}
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{url}?_pk=c"):
                pass
        assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as forged:  # not the JWT minted for a known token
            async with connect(f"{url}?_pk=d&token=someone-else"):
                pass
        assert forged.value.response.status_code == 401
        for headers in ({}, {"Authorization": "Bearer someone-else"}):
            response = await http.get("/parties/main/smoke", headers=headers)
            assert response.status_code == 401
        await http.aclose()
    finally:
        server.stop()
