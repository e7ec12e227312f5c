"""The admin API and ``partydeco rooms``, in one process and across a Redis cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from partydeco.observability import party_token
from tests.support import ROOT, Process, eventually, free_port, serve, start_process
from tests.support.ops_app import app as ops_app
from tests.support.redis_server import RedisServer

SECRET = "admin-secret-0123456789"


async def admin(base: str, path: str, token: str | None = SECRET, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as client:
        return await client.get(
            f"http://{base}/_partydeco{path}", headers=headers, params=params, timeout=10
        )


async def join(stack: AsyncExitStack, base: str, party: str, room: str, user: str,
               tag: str | None = None) -> ClientConnection:  # fmt: skip
    query = f"token=t-{user}&_pk={user}" + (f"&tag={tag}" if tag else "")
    ws = await stack.enter_async_context(connect(f"ws://{base}/parties/{party}/{room}?{query}"))
    json.loads(await ws.recv())
    return ws


async def test_lists_rooms_and_connections_and_scopes_party_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARTYDECO_ADMIN_TOKEN", SECRET)
    async with serve(ops_app) as base, AsyncExitStack() as stack:
        await join(stack, base, "chat", "lobby", "alice", tag="mod")
        await join(stack, base, "chat", "lobby", "bob")
        await join(stack, base, "chat", "side", "carol")
        await join(stack, base, "main", "secret-room", "dave")

        # no token, a wrong one, a party token forged without the secret: 401
        assert (await admin(base, "/rooms", token=None)).status_code == 401
        assert (await admin(base, "/rooms", token="wrong")).status_code == 401
        forged = party_token("another-secret-0123456789", "chat")
        assert (await admin(base, "/rooms", token=forged)).status_code == 401

        listing = (await admin(base, "/rooms")).json()
        assert listing["rooms"] == [
            {"party": "chat", "room": "lobby", "connections": 2},
            {"party": "chat", "room": "side", "connections": 1},
            {"party": "main", "room": "secret-room", "connections": 1},
        ]
        assert listing["parties"] == {
            "chat": {"rooms": 2, "connections": 3}, "main": {"rooms": 1, "connections": 1},
        }  # fmt: skip
        assert (listing["truncated"], listing["processes"]) == (False, 1)
        limited = (await admin(base, "/rooms", limit=1)).json()
        assert [r["room"] for r in limited["rooms"]] == ["lobby"] and limited["truncated"]

        room = (await admin(base, "/rooms/chat/lobby")).json()
        assert room == {
            "party": "chat", "room": "lobby", "count": 2, "truncated": False,
            "connections": [
                {"id": "alice", "tags": ["alice", "mod"], "principal": "alice"},
                {"id": "bob", "tags": ["bob"], "principal": "bob"},
            ],
        }  # fmt: skip
        assert (await admin(base, "/rooms/chat/nowhere")).status_code == 404

        # a party token sees its party only, however it asks
        chat = party_token(SECRET, "chat")
        own = (await admin(base, "/rooms", token=chat)).json()
        assert {r["party"] for r in own["rooms"]} == {"chat"}
        assert list(own["parties"]) == ["chat"]
        assert (await admin(base, "/rooms", token=chat, party="main")).status_code == 403
        assert (await admin(base, "/rooms/main/secret-room", token=chat)).status_code == 403
        assert (await admin(base, "/rooms/chat/side", token=chat)).json()["count"] == 1
        assert (await admin(base, "/rooms", limit="many")).status_code == 400


async def test_admin_api_is_off_without_a_secret() -> None:
    async with serve(ops_app) as base:
        assert (await admin(base, "/rooms")).status_code == 404


def rooms_command(*args: str, token: str | None = SECRET) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    if token:
        env["PARTYDECO_ADMIN_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "partydeco", "rooms", *args],
        capture_output=True, text=True, env=env, timeout=30, cwd=ROOT,
    )  # fmt: skip


def cluster_node(redis: RedisServer, prefix: str) -> Process:
    port = free_port()
    return start_process(
        ["-m", "partydeco", "serve", "tests/support/ops_app.py", "--port", str(port),
         "--redis", redis.url],
        port=port,
        env={"REDIS_PREFIX": prefix, "PARTYDECO_ADMIN_TOKEN": SECRET},
        ready_path="/pid",
    )  # fmt: skip



async def test_a_cluster_lists_every_process_rooms_and_the_cli_reads_it(
    redis_server: RedisServer, redis_prefix: str, nodes: list[Process]
) -> None:
    a = cluster_node(redis_server, redis_prefix)
    nodes.append(a)
    b = cluster_node(redis_server, redis_prefix)
    nodes.append(b)
    async with AsyncExitStack() as stack:
        # the first socket of a room makes the process it lands on the owner
        await join(stack, a.base, "chat", "on-a", "alice")
        await join(stack, b.base, "chat", "on-b", "bob")
        await join(stack, a.base, "chat", "on-b", "carol")  # relayed to b, the owner
        await join(stack, b.base, "main", "private", "dave")
        expected = [
            {"party": "chat", "room": "on-b", "connections": 2},
            {"party": "chat", "room": "on-a", "connections": 1},
            {"party": "main", "room": "private", "connections": 1},
        ]
        for node in (a, b):
            listing = (await admin(node.base, "/rooms")).json()
            assert listing["rooms"] == expected
            assert (listing["processes"], listing["unreachable"]) == (2, 0)
            assert listing["parties"]["chat"] == {"rooms": 2, "connections": 3}
            room = (await admin(node.base, "/rooms/chat/on-b")).json()
            assert [(c["id"], c["principal"]) for c in room["connections"]] == [
                ("bob", "bob"), ("carol", "carol"),
            ]  # fmt: skip
        chat = party_token(SECRET, "chat")
        scoped = (await admin(a.base, "/rooms", token=chat)).json()
        assert {r["party"] for r in scoped["rooms"]} == {"chat"}
        assert list(scoped["parties"]) == ["chat"]
        assert (await admin(b.base, "/rooms/main/private", token=chat)).status_code == 403

        url = f"http://{a.base}"
        out = rooms_command("--url", url)
        assert out.returncode == 0, out.stderr
        assert "on-b" in out.stdout and "private" in out.stdout
        assert "2 process(es) answered" in out.stdout
        out = rooms_command("chat", "on-b", "--url", url)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[0] == "chat/on-b: 2 connection(s)"
        assert "carol" in out.stdout
        out = rooms_command("--url", url, token=chat)
        assert "private" not in out.stdout and "on-a" in out.stdout
        out = rooms_command("main", "--url", url, token=chat)
        assert out.returncode == 1 and "403" in out.stderr
        out = rooms_command("--json", "--url", url)
        assert json.loads(out.stdout)["rooms"] == expected

    async def listed_empty() -> bool:
        parties = (await admin(a.base, "/rooms")).json()["parties"]
        return all(totals["connections"] == 0 for totals in parties.values())

    await eventually(listed_empty, timeout=10, message="connections still listed")


def test_the_cli_mints_party_tokens_and_needs_a_token() -> None:
    out = rooms_command("--mint", "chat")
    assert out.returncode == 0 and out.stdout.strip() == party_token(SECRET, "chat")
    out = rooms_command("--mint", "Not A Party")
    assert out.returncode == 1 and "not a party name" in out.stderr
    out = rooms_command(token=None)
    assert out.returncode == 1 and "PARTYDECO_ADMIN_TOKEN" in out.stderr
