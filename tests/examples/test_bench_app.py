"""bench/app.py works: the shared harness's protocol, with RS256 JWTs checked on every arrival."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support import ROOT, start_process


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


def test_the_load_generator_can_send_a_new_verified_token_every_time(tmp_path: Path) -> None:
    from bench.run import write_key

    key = tmp_path / "bench-key.pem"
    write_key(key)
    server = start_process(
        ["bench/app.py", "--key-file", str(key)], ready_path="/.well-known/jwks.json"
    )
    try:

        def run(*args: str) -> dict[str, Any]:
            command = ["node", "bench/loadgen.mjs", *args, "--port", str(server.port)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
            return dict(json.loads(done.stdout.strip().splitlines()[-1]))

        fresh = ["--freshkey", str(key)]
        connects = run("connect", "--connections", "20", "--concurrency", "4", *fresh)
        requests = run("http", "--requests", "20", "--concurrency", "4", *fresh)
        assert (connects["errors"], connects["count"]) == (0, 20), connects
        assert (requests["errors"], requests["count"]) == (0, 20), requests
        # the tokens are really checked: the wrong audience is refused, every time
        refused = run("connect", "--connections", "4", "--audience", "elsewhere", *fresh)
        assert refused["error_kinds"] == ["handshake refused: HTTP 401 (x4)"], refused
    finally:
        server.stop()
