"""Scale-out on Redis, end to end: separate server processes sharing a real redis-server.

Each test starts its servers with ``partydeco serve tests/support/cluster_app.py --redis URL``
(or ``--workers 2``) and talks to them with real WebSocket and HTTP clients.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from partydeco import App, ConnectContext, Connection, Request, Room
from partydeco.storage import RoomKey
from tests.support import Process, eventually, free_port, serve, start_process
from tests.support.redis_server import RedisServer


def start_node(
    redis: RedisServer,
    prefix: str,
    *,
    lease: float = 5.0,
    workers: int = 1,
    runner: str = "partydeco",
) -> Process:
    """One server process (with *workers* workers) on the cluster.

    *runner* ``"partydeco"`` runs ``partydeco serve --redis URL``; ``"hypercorn"``
    runs Hypercorn's own CLI with ``PARTYDECO_REDIS_URL`` in the environment.
    """
    port = free_port()
    env = {"LEASE": str(lease), "REDIS_PREFIX": prefix}
    if runner == "hypercorn":
        args = ["-m", "hypercorn", "tests.support.cluster_app:app", "--bind", f"127.0.0.1:{port}"]
        args += ["--workers", str(workers)]
        env["PARTYDECO_REDIS_URL"] = redis.url
    else:
        args = ["-m", "partydeco", "serve", "tests/support/cluster_app.py", "--port", str(port)]
        args += ["--redis", redis.url]
        if workers > 1:
            args += ["--workers", str(workers)]
    return start_process(args, port=port, env=env)



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


@pytest.mark.parametrize("runner", ["partydeco", "hypercorn"])
async def test_workers_2_behave_as_one_room(
    redis_server: RedisServer, redis_prefix: str, nodes: list[Process], runner: str
) -> None:
    server = start_node(redis_server, redis_prefix, workers=2, runner=runner)
    nodes.append(server)
    workers: set[int] = set()

    async def both_workers_answered() -> bool:
        workers.add((await get(server, "/pid"))["pid"])
        return len(workers) == 2

    await eventually(both_workers_answered, timeout=10, message="the second worker did not start")
    sockets: list[ClientConnection] = []
    by_edge: dict[int, ClientConnection] = {}
    owners = set()
    try:
        # Connect until sockets landed in both workers (the kernel spreads them).
        for i in range(40):
            # No client-side queue limit: sockets that never read must still close at once.
            ws = await connect(ws_url(server, f"u{i}"), max_queue=None)
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


# -- in-process clusters (two apps in this event loop, one Redis) -----------------------


def build_app(
    url: str, prefix: str, name: str, fired: list[tuple[str, str]], **options: Any
) -> App:
    """An app whose handlers say which app ran them."""
    app = App(redis_url=url, redis_prefix=prefix, redis_lease=1.0, **options)
    main = app.party()

    @main.on_connect
    def hello(connection: Connection, ctx: ConnectContext) -> None:
        connection.send(f"hello from {name}")

    @main.on_message
    def relay(message: str | bytes, sender: Connection) -> None:
        sender.room.broadcast(f"{name}:{message!s}")

    @main.on_request
    async def info(request: Request, room: Room) -> Any:
        if request.method == "PUT":
            await room.storage.put("k", (await request.body()).decode())
        elif request.method == "POST":
            await room.storage.set_alarm(time.time() + 0.2)
        return {"app": name, "k": await room.storage.get("k")}

    @main.on_alarm
    def ring(room: Room) -> None:
        fired.append((name, room.id))

    return app


async def http(base: str, method: str = "GET", path: str = "/parties/main/r", **kw: Any) -> Any:
    async with httpx.AsyncClient() as client:
        return await client.request(method, f"http://{base}{path}", timeout=10, **kw)


async def test_redis_restart_closes_with_1012_answers_503_then_recovers(
    own_redis: RedisServer, redis_prefix: str
) -> None:
    fired: list[tuple[str, str]] = []
    a_app = build_app(own_redis.url, redis_prefix, "A", fired)
    b_app = build_app(own_redis.url, redis_prefix, "B", fired)
    async with serve(a_app) as a, serve(b_app) as b:
        alice = await connect(f"ws://{a}/parties/main/r?_pk=alice")
        bob = await connect(f"ws://{b}/parties/main/r?_pk=bob")
        assert await recv(alice) == "hello from A"
        assert await recv(bob) == "hello from A"
        stored = await http(b, "PUT", content=b"committed")
        assert stored.json() == {"app": "A", "k": "committed"}

        own_redis.stop()
        for ws in (alice, bob):
            with pytest.raises(ConnectionClosed) as closed:
                await recv(ws, timeout=10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1012
        for base in (a, b):
            refused = await http(base)
            assert refused.status_code == 503
            assert "Redis" in refused.text
            with pytest.raises(InvalidStatus) as denied:
                async with connect(f"ws://{base}/parties/main/r"):
                    pass
            assert denied.value.response.status_code == 503

        own_redis.start()

        async def answers() -> bool:
            return all([(await http(base)).status_code == 200 for base in (a, b)])

        await eventually(
            answers, timeout=10, interval=0.05,
            message="service did not resume after Redis came back",
        )
        assert (await http(a)).json()["k"] == "committed"
        async with (
            connect(f"ws://{b}/parties/main/r?_pk=alice") as alice2,
            connect(f"ws://{a}/parties/main/r?_pk=bob") as bob2,
        ):
            owner = (await recv(alice2))[len("hello from ") :]
            assert await recv(bob2) == f"hello from {owner}"
            await alice2.send("again")
            assert await recv(bob2) == f"{owner}:again"


async def test_an_alarm_fires_once_on_the_owner(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    fired: list[tuple[str, str]] = []
    apps = {name: build_app(redis_server.url, redis_prefix, name, fired) for name in "AB"}
    async with serve(apps["A"]) as a, serve(apps["B"]) as b:
        bases = {"A": a, "B": b}
        owners = {}
        for i in range(6):
            room = f"alarm-{i}"
            name = "AB"[i % 2]
            response = await http(bases[name], "POST", f"/parties/main/{room}")
            owners[room] = response.json()["app"]
            assert owners[room] == name  # the first arrival took the room
        await eventually(lambda: len(fired) >= len(owners), timeout=10)

        async def settled() -> bool:
            for app in apps.values():
                assert app.runtime is not None
                scheduler = app.runtime.lifecycle.scheduler
                assert scheduler is not None
                for room in owners:
                    key = RoomKey("main", room)
                    alarm = await app.runtime.storage.get_alarm(key)
                    if scheduler.is_firing(key) or alarm is not None:
                        return False
            return True

        await eventually(settled, timeout=10, interval=0.05)
        assert sorted(fired) == sorted((owner, room) for room, owner in owners.items())


async def test_an_idle_room_gives_its_lease_back(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    fired: list[tuple[str, str]] = []
    # long enough that the room taken by b is still loaded when a asks right after
    a_app = build_app(redis_server.url, redis_prefix, "A", fired, idle_timeout=1.0)
    b_app = build_app(redis_server.url, redis_prefix, "B", fired, idle_timeout=1.0)
    async with serve(a_app) as a, serve(b_app) as b:
        assert (await http(a)).json()["app"] == "A"
        assert (await http(b)).json()["app"] == "A"  # relayed to the owner
        await eventually(
            lambda: not any(list(app.runtime.backplane.rooms()) for app in (a_app, b_app))
        )

        async def b_took_the_room() -> bool:  # the lease is free: b takes the room
            return bool((await http(b)).json()["app"] == "B")

        await eventually(
            b_took_the_room, interval=0.05, message="the idle room's lease was not given back"
        )
        assert (await http(a)).json()["app"] == "B"
