"""Scale-out on Redis, end to end: separate server processes sharing a real redis-server.

Each test starts its servers with ``partydeco serve tests/cluster_app.py --redis URL``
(or ``--workers 2``) and talks to them with real WebSocket and HTTP clients.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .helpers import Process, free_port, start_process
from .redis_server import RedisServer


def start_node(redis: RedisServer, prefix: str, *, lease: float = 5.0, workers: int = 1) -> Process:
    """One ``partydeco serve`` process (with *workers* workers) on the cluster."""
    port = free_port()
    args = ["-m", "partydeco", "serve", "tests/cluster_app.py", "--port", str(port)]
    args += ["--redis", redis.url]
    if workers > 1:
        args += ["--workers", str(workers)]
    return start_process(args, port=port, env={"LEASE": str(lease), "REDIS_PREFIX": prefix})


@pytest.fixture
def nodes() -> Iterator[list[Process]]:
    """Servers started by the test; all stopped at the end."""
    started: list[Process] = []
    yield started
    for node in started:
        node.stop()


def ws_url(node: Process, user: str, room: str = "r") -> str:
    return f"ws://{node.base}/parties/main/{room}?token=t-{user}&_pk={user}"


async def recv(ws: ClientConnection, timeout: float = 5.0) -> str:
    return str(await asyncio.wait_for(ws.recv(), timeout))


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> Any:
    return json.loads(await recv(ws, timeout))


async def get(node: Process, path: str = "/parties/main/r") -> Any:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{node.base}{path}", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


async def test_two_processes_share_one_room_in_order(
    redis_server: RedisServer, redis_prefix: str, nodes: list[Process]
) -> None:
    a = start_node(redis_server, redis_prefix)
    nodes.append(a)
    b = start_node(redis_server, redis_prefix)
    nodes.append(b)
    async with connect(ws_url(a, "alice")) as alice, connect(ws_url(b, "bob")) as bob:
        hello_alice = await recv_json(alice)
        hello_bob = await recv_json(bob)
        # The hooks ran where each socket landed; on_connect ran in one process for both.
        assert hello_alice["edge"] == a.popen.pid
        assert hello_bob["edge"] == b.popen.pid
        owner = hello_alice["pid"]
        assert hello_bob["pid"] == owner
        count = 50
        for i in range(count):
            await alice.send(f"a{i}")
            await bob.send(f"b{i}")
        seen_alice = [await recv(alice) for _ in range(2 * count)]
        seen_bob = [await recv(bob) for _ in range(2 * count)]
        for seen in (seen_alice, seen_bob):
            assert [m for m in seen if m.startswith("alice:")] == [
                f"alice:a{i}" for i in range(count)
            ]
            assert [m for m in seen if m.startswith("bob:")] == [f"bob:b{i}" for i in range(count)]
        # One module-level counter saw every frame: the handlers ran in one process.
        for node in (a, b):
            info = await get(node)
            assert info["pid"] == owner
            assert info["handled"] == 2 * count
            assert info["connections"] == ["alice", "bob"]
            assert info["starts"] == 1
    # HTTP (with a body) through either process reaches the owner's storage.
    async with httpx.AsyncClient() as client:
        stored = await client.put(f"http://{b.base}/parties/main/r/greeting", content=b"hi")
        assert stored.json() == {"stored": "greeting", "pid": owner}
    assert (await get(a, "/parties/main/r/greeting"))["value"] == "hi"
    # A refused handshake is answered by the hook of the process it reached.
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://{b.base}/parties/main/r?token=bad"):
            pass
    assert refused.value.response.status_code == 401


async def test_workers_2_behave_as_one_room(
    redis_server: RedisServer, redis_prefix: str, nodes: list[Process]
) -> None:
    server = start_node(redis_server, redis_prefix, workers=2)
    nodes.append(server)
    sockets: list[ClientConnection] = []
    by_edge: dict[int, ClientConnection] = {}
    owners = set()
    try:
        # Connect until sockets landed in both workers (the kernel spreads them).
        for i in range(40):
            ws = await connect(ws_url(server, f"u{i}"))
            sockets.append(ws)
            hello = await recv_json(ws)
            owners.add(hello["pid"])
            by_edge.setdefault(hello["edge"], ws)
            if len(by_edge) == 2:
                break
        assert len(by_edge) == 2, "every socket landed in the same worker"
        assert len(owners) == 1
        first, second = by_edge.values()
        count = 30
        for i in range(count):
            await first.send(f"x{i}")
            await second.send(f"y{i}")
        first_id = sockets.index(first)
        second_id = sockets.index(second)
        for ws in (first, second):
            seen = [await recv(ws) for _ in range(2 * count)]
            assert [m for m in seen if m.startswith(f"u{first_id}:")] == [
                f"u{first_id}:x{i}" for i in range(count)
            ]
            assert [m for m in seen if m.startswith(f"u{second_id}:")] == [
                f"u{second_id}:y{i}" for i in range(count)
            ]
        # Whichever worker answers, it is the owner, and its counter saw all frames.
        for _ in range(4):
            info = await get(server)
            assert info["pid"] in owners
            assert info["handled"] == 2 * count
            assert len(info["connections"]) == len(sockets)
    finally:
        for ws in sockets:
            await ws.close()


async def test_kill_9_of_the_owner_fails_over(
    redis_server: RedisServer, redis_prefix: str, nodes: list[Process]
) -> None:
    lease = 1.0
    a = start_node(redis_server, redis_prefix, lease=lease)
    nodes.append(a)
    b = start_node(redis_server, redis_prefix, lease=lease)
    nodes.append(b)
    alice = await connect(ws_url(a, "alice"))
    bob = await connect(ws_url(b, "bob"))
    try:
        assert (await recv_json(alice))["pid"] == a.popen.pid  # a owns the room
        assert (await recv_json(bob))["pid"] == a.popen.pid
        async with httpx.AsyncClient() as client:
            stored = await client.put(f"http://{b.base}/parties/main/r/k", content=b"kept")
            assert stored.json()["pid"] == a.popen.pid

        a.popen.kill()
        a.popen.wait()
        killed = time.monotonic()
        # bob's socket (held by b) stays open; b takes the room over, runs on_start and
        # attaches bob again, whose on_connect greets him from b.
        hello = await recv_json(bob, timeout=10)
        assert hello == {"hello": "bob", "pid": b.popen.pid, "edge": b.popen.pid}
        assert time.monotonic() - killed < lease + 4
        info = await get(b)
        assert info["pid"] == b.popen.pid
        assert info["starts"] == 1
        assert info["connections"] == ["bob"]
        assert (await get(b, "/parties/main/r/k"))["value"] == "kept"
        await bob.send("after")
        assert await recv(bob) == "bob:after"
        # alice's socket died with a; partysocket would reconnect: she lands on b.
        with pytest.raises(ConnectionClosed):
            await recv(alice)
        async with connect(ws_url(b, "alice")) as again:
            assert (await recv_json(again))["pid"] == b.popen.pid
            assert (await get(b))["connections"] == ["alice", "bob"]
            await again.send("back")
            assert await recv(bob) == "alice:back"
    finally:
        await alice.close()
        await bob.close()


async def test_graceful_stop_of_the_owner_hands_the_room_over(
    redis_server: RedisServer, redis_prefix: str, nodes: list[Process]
) -> None:
    a = start_node(redis_server, redis_prefix)
    nodes.append(a)
    b = start_node(redis_server, redis_prefix)
    nodes.append(b)
    async with connect(ws_url(a, "alice")) as alice, connect(ws_url(b, "bob")) as bob:
        assert (await recv_json(alice))["pid"] == a.popen.pid
        assert (await recv_json(bob))["pid"] == a.popen.pid
        a.popen.terminate()
        with pytest.raises(ConnectionClosed) as closed:
            await recv(alice)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        # bob stays connected and is re-attached at once (no lease to wait for).
        assert await recv_json(bob) == {"hello": "bob", "pid": b.popen.pid, "edge": b.popen.pid}
        await bob.send("still here")
        assert await recv(bob) == "bob:still here"
