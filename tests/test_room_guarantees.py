"""The Durable Object guarantees PartyKit code relies on, through real servers and clients.

The input gate (get-then-put never loses an update), the output gate (nothing reaches
a client before the write it follows is durable), one socket per connection id, and
one room (one ``on_start``) per room id.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from partydeco import App, ConnectContext, Connection, Lobby, Request, Room, closecodes
from partydeco.storage import register_backend
from tests.support import eventually, serve
from tests.support.redis_server import RedisServer
from tests.support.slow_storage import HeldWrites


def counter_app(**options: Any) -> App:
    """PartyKit's counter, written as PartyKit apps write it: get, then put."""
    app = App(max_messages_per_second=None, **options)
    main = app.party()

    async def increment(room: Room) -> int:
        n = (await room.storage.get("n") or 0) + 1
        await room.storage.put("n", n)
        return n

    @main.on_request
    async def count(request: Request, room: Room) -> Any:
        return {"n": await increment(room)}

    @main.on_message
    async def bump(message: str | bytes, sender: Connection) -> None:
        sender.send(str(await increment(sender.room)))

    return app


async def post_many(bases: list[str], count: int) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as client:
        replies = await asyncio.gather(
            *(client.post(f"http://{bases[i % len(bases)]}/parties/main/c") for i in range(count))
        )
    assert {r.status_code for r in replies} == {200}
    return [r.json()["n"] for r in replies]


async def bump_from_sockets(bases: list[str], sockets: int, each: int) -> list[int]:
    async def one(i: int) -> list[int]:
        async with connect(f"ws://{bases[i % len(bases)]}/parties/main/c?_pk=s{i}") as ws:
            for _ in range(each):
                await ws.send("+1")
            return [int(await asyncio.wait_for(ws.recv(), 20)) for _ in range(each)]

    results = await asyncio.gather(*(one(i) for i in range(sockets)))
    return [n for numbers in results for n in numbers]


# -- the input gate ------------------------------------------------------------------------


async def test_http_counter_answers_one_to_n(tmp_path: Path) -> None:
    app = counter_app(storage=str(tmp_path / "rooms.db"))
    async with serve(app) as base:
        assert sorted(await post_many([base], 40)) == list(range(1, 41))


async def test_socket_counter_counts_every_message_once(tmp_path: Path) -> None:
    app = counter_app(storage=str(tmp_path / "rooms.db"))
    async with serve(app) as base:
        assert sorted(await bump_from_sockets([base], 4, 15)) == list(range(1, 61))


async def test_the_counter_holds_across_two_processes_on_redis(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    options = {"redis_url": redis_server.url, "redis_prefix": redis_prefix}
    a, b = counter_app(**options), counter_app(**options)
    async with serve(a) as base_a, serve(b) as base_b:
        assert sorted(await post_many([base_a, base_b], 40)) == list(range(1, 41))
        numbers = await bump_from_sockets([base_a, base_b], 4, 15)
        assert sorted(numbers) == list(range(41, 101))


async def test_a_transaction_holds_the_gate_until_it_commits(tmp_path: Path) -> None:
    app = App(storage=str(tmp_path / "rooms.db"))
    main = app.party()
    order: list[str] = []

    @main.on_request
    async def slow_increment(request: Request, room: Room) -> Any:
        async with room.storage.transaction() as tx:
            order.append("transaction starts")
            n = (await tx.get("n") or 0) + 1
            await asyncio.sleep(0.05)  # the handler's own work, not the test's: no storage
            await tx.put("n", n)
        order.append("transaction committed")
        return {"n": n}

    @main.on_message
    async def note(message: str | bytes, sender: Connection) -> None:
        order.append(f"message {message!s}")
        sender.send("noted")

    async with serve(app) as base, connect(f"ws://{base}/parties/main/c") as ws:
        async with httpx.AsyncClient(timeout=10) as client:
            request = asyncio.create_task(client.post(f"http://{base}/parties/main/c"))
            await eventually(lambda: "transaction starts" in order)
            await ws.send("during")  # arrives while the transaction is open
            assert (await request).json() == {"n": 1}
            assert await asyncio.wait_for(ws.recv(), 5) == "noted"
            replies = await asyncio.gather(
                *(client.post(f"http://{base}/parties/main/c") for _ in range(10))
            )
    assert order[:3] == ["transaction starts", "transaction committed", "message during"]
    assert sorted(r.json()["n"] for r in replies) == list(range(2, 12))


async def test_awaiting_anything_but_storage_leaves_the_gate_open() -> None:
    """A handler waiting for another event (as for a fetch) does not block the room."""
    app = App(storage="memory://")
    main = app.party()
    arrived = asyncio.Event()

    @main.on_message
    async def wait_or_signal(message: str | bytes, sender: Connection) -> None:
        if message == "wait":
            await asyncio.wait_for(arrived.wait(), 5)
            sender.send("released")
        else:
            arrived.set()

    async with serve(app) as base:
        async with connect(f"ws://{base}/parties/main/c") as a, connect(
            f"ws://{base}/parties/main/c"
        ) as b:
            await a.send("wait")
            await b.send("signal")
            assert await asyncio.wait_for(a.recv(), 5) == "released"


async def test_storage_calls_can_opt_out_of_the_gates() -> None:
    backend = HeldWrites()
    register_backend("heldoptout", lambda url: backend)
    app = App(storage="heldoptout://")
    main = app.party()
    delivered: list[str] = []

    @main.on_message
    async def write_or_answer(message: str | bytes, sender: Connection) -> None:
        delivered.append(str(message))
        if message == "write":
            await sender.room.storage.put("k", 1, allow_concurrency=True)
            sender.send("written")
        elif message == "write unconfirmed":
            await sender.room.storage.put(
                "k", 2, allow_concurrency=True, allow_unconfirmed=True
            )
        else:
            sender.send("answered")

    async with serve(app) as base, connect(f"ws://{base}/parties/main/c") as a, connect(
        f"ws://{base}/parties/main/c"
    ) as b:
        await a.send("write")
        await eventually(lambda: backend.waiting)
        await b.send("ping")  # delivered although a write of the room is in flight...
        await eventually(lambda: "ping" in delivered)
        backend.release()  # ...but its answer waits for the write to be durable
        assert await asyncio.wait_for(b.recv(), 5) == "answered"
        assert await asyncio.wait_for(a.recv(), 5) == "written"
        await a.send("write unconfirmed")
        await eventually(lambda: backend.waiting)
        await b.send("ping")
        assert await asyncio.wait_for(b.recv(), 5) == "answered"  # not held this time
        backend.release()


# -- the output gate -----------------------------------------------------------------------


async def test_frames_wait_for_the_write_in_flight_to_be_durable() -> None:
    backend = HeldWrites()
    register_backend("held", lambda url: backend)
    app = App(storage="held://")
    main = app.party()
    pending: list[asyncio.Task[None]] = []

    @main.on_message
    async def write_then_tell(message: str | bytes, sender: Connection) -> None:
        # the write is not awaited here: the frame after it must still wait for it
        pending.append(asyncio.ensure_future(sender.room.storage.put("k", str(message))))
        await asyncio.sleep(0)
        sender.send("after the write")
        sender.room.broadcast("broadcast after the write")

    async with serve(app) as base, connect(f"ws://{base}/parties/main/c") as ws:
        await ws.send("v1")
        await eventually(lambda: backend.waiting)
        room = app.runtime.backplane.room("main", "c") if app.runtime else None
        assert room is not None
        await eventually(lambda: room.gate.held == 2)
        backend.release()
        assert await asyncio.wait_for(ws.recv(), 5) == "after the write"
        assert await asyncio.wait_for(ws.recv(), 5) == "broadcast after the write"
        await asyncio.gather(*pending)
        assert await room.storage.get("k") == "v1"


# -- connection ids --------------------------------------------------------------------------


def id_app(**options: Any) -> tuple[App, list[str]]:
    """Tokens name users; every connect and close is logged in order."""
    app = App(storage="memory://", **options)
    main = app.party()
    log: list[str] = []

    @main.before_connect
    def authenticate(request: Request, lobby: Lobby) -> Request:
        user = request.args.get("user")
        if user:  # what a hook does after checking a token
            request.headers["X-User-ID"] = user
        return request

    @main.on_connect
    def hello(connection: Connection, ctx: ConnectContext) -> None:
        log.append(f"connect {connection.id} {connection.principal}")
        connection.send(f"hello {connection.principal}")

    @main.on_message
    def whisper(message: str | bytes, sender: Connection) -> None:
        target, _, text = str(message).partition(":")
        peer = sender.room.get_connection(target)
        if peer is not None:
            peer.send(text)

    @main.on_close
    def bye(connection: Connection, code: int, reason: str) -> None:
        log.append(f"close {connection.id} {code}")

    return app, log


async def open_ws(url: str) -> ClientConnection:
    return await connect(url)


async def refused(url: str) -> int:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(url):
            pass
    return caught.value.response.status_code


async def closed_with(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code is not None
    return ws.close_code


async def test_another_principal_cannot_take_an_open_connection_id() -> None:
    app, log = id_app()
    async with serve(app) as base:
        url = f"ws://{base}/parties/main/r?_pk=alice-tab"
        async with connect(url + "&user=alice") as alice:
            assert await alice.recv() == "hello alice"
            assert await refused(url + "&user=mallory") == 409
            # neither can a client naming itself in the header a hook would set
            forged = connect(url, additional_headers={"X-User-ID": "alice"})
            with pytest.raises(InvalidStatus) as caught:
                async with forged:
                    pass
            assert caught.value.response.status_code == 409
            async with connect(f"ws://{base}/parties/main/r?_pk=bob&user=bob") as bob:
                await bob.recv()
                await bob.send("alice-tab:still yours")
                assert await asyncio.wait_for(alice.recv(), 5) == "still yours"
    assert [line for line in log if line.startswith("connect")] == [
        "connect alice-tab alice",
        "connect bob bob",
    ]


async def test_anonymous_sockets_cannot_share_an_id() -> None:
    app, _ = id_app()
    async with serve(app) as base:
        url = f"ws://{base}/parties/main/r?_pk=shared"
        async with connect(url) as first:
            assert await first.recv() == "hello None"
            assert await refused(url) == 409


async def test_the_same_principal_replaces_its_socket_and_its_on_close_runs_first() -> None:
    app, log = id_app()
    async with serve(app) as base:
        url = f"ws://{base}/parties/main/r?_pk=alice-tab&user=alice"
        old = await connect(url)
        assert await old.recv() == "hello alice"
        async with connect(url) as new:
            assert await new.recv() == "hello alice"
            assert await closed_with(old) == closecodes.REPLACED
            async with connect(f"ws://{base}/parties/main/r?_pk=bob&user=bob") as bob:
                await bob.recv()
                await bob.send("alice-tab:to the new socket")
                assert await asyncio.wait_for(new.recv(), 5) == "to the new socket"
    assert log[:3] == [
        "connect alice-tab alice",
        f"close alice-tab {closecodes.REPLACED}",
        "connect alice-tab alice",
    ]
    assert log.count(f"close alice-tab {closecodes.REPLACED}") == 1


async def test_connection_id_rules_hold_across_processes(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    options = {"redis_url": redis_server.url, "redis_prefix": redis_prefix, "redis_lease": 1.0}
    (a, log), (b, _) = id_app(**options), id_app(**options)
    async with serve(a) as base_a, serve(b) as base_b:
        path = "/parties/main/r?_pk=alice-tab"
        old = await connect(f"ws://{base_a}{path}&user=alice")
        assert await old.recv() == "hello alice"
        assert await refused(f"ws://{base_b}{path}&user=mallory") == 409
        async with connect(f"ws://{base_b}{path}&user=alice") as new:
            assert await new.recv() == "hello alice"
            assert await closed_with(old) == closecodes.REPLACED
            async with connect(f"ws://{base_a}/parties/main/r?_pk=bob&user=bob") as bob:
                await bob.recv()
                await bob.send("alice-tab:across processes")
                assert await asyncio.wait_for(new.recv(), 5) == "across processes"
    # the handlers ran on the room's one owner, in this order
    assert log[:3] == [
        "connect alice-tab alice",
        f"close alice-tab {closecodes.REPLACED}",
        "connect alice-tab alice",
    ]


# -- one room per id -------------------------------------------------------------------------


async def test_a_slow_on_start_runs_once_even_past_the_idle_timeout() -> None:
    app = App(storage="memory://", idle_timeout=0.05)
    main = app.party()
    starts: list[str] = []
    loaded = asyncio.Event()

    @main.on_start
    async def load(room: Room) -> None:
        starts.append(room.id)
        await loaded.wait()  # a slow load: it ends when the test says

    @main.on_message
    def relay(message: str | bytes, sender: Connection) -> None:
        sender.room.broadcast(message, without=[sender.id])

    async with serve(app) as base:
        url = f"ws://{base}/parties/main/slow"
        first = asyncio.create_task(open_ws(url + "?_pk=a"))
        await eventually(lambda: starts)
        runtime = app.runtime
        assert runtime is not None
        swept = runtime.lifecycle.sweeps
        # the reaper looks at the rooms several times, well past the idle timeout
        await eventually(lambda: runtime.lifecycle.sweeps >= swept + 4)
        second = asyncio.create_task(open_ws(url + "?_pk=b"))
        await eventually(lambda: runtime.guard.per_room.get(("main", "slow")) == 2)
        loaded.set()
        async with await first as a, await second as b:
            await a.send("from a")
            assert await asyncio.wait_for(b.recv(), 5) == "from a"
            await b.send("from b")
            assert await asyncio.wait_for(a.recv(), 5) == "from b"
    assert starts == ["slow"]


async def test_a_failed_on_start_is_retried_once_by_the_next_arrival() -> None:
    app = App(storage="memory://")
    main = app.party()
    attempts: list[str] = []

    @main.on_start
    async def load(room: Room) -> None:
        attempts.append("start")
        await asyncio.sleep(0.1)
        if len(attempts) == 1:
            raise RuntimeError("the first load fails")

    @main.on_connect
    def hello(connection: Connection, ctx: ConnectContext) -> None:
        connection.send("hello")

    async with serve(app) as base:
        url = f"ws://{base}/parties/main/flaky"
        results = await asyncio.gather(
            *(connect(f"{url}?_pk=c{i}") for i in range(3)), return_exceptions=True
        )
        opened = [r for r in results if not isinstance(r, BaseException)]
        failed = [r for r in results if isinstance(r, InvalidStatus)]
        assert len(failed) == 1 and failed[0].response.status_code == 500
        for ws in opened:
            assert await asyncio.wait_for(ws.recv(), 5) == "hello"
            await ws.close()
    assert attempts == ["start", "start"]
