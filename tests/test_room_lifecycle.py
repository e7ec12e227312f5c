"""room.storage, alarms, idle unloading, tags and room-to-room calls on a real server."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from partydeco import App, ConnectContext, Connection, Request, Response, Room
from partydeco.parties import SocketClosed
from partydeco.storage import RoomKey, RoomStorage, SqliteStorage
from tests.support import eventually, serve


async def test_room_storage_through_requests(tmp_path: Path) -> None:
    app = App(storage=f"sqlite://{tmp_path}/rooms.db")
    main = app.party()

    @main.on_request
    async def count(request: Request, room: Room) -> dict[str, object]:
        async with room.storage.transaction() as tx:
            n = (await tx.get("n") or 0) + 1
            await tx.put("n", n)
        return {"room": room.id, "n": n}

    async with serve(app) as base, httpx.AsyncClient() as client:
        results = await asyncio.gather(
            *(client.post(f"http://{base}/parties/main/r1") for _ in range(20))
        )
        assert sorted(r.json()["n"] for r in results) == list(range(1, 21))
        other = await client.post(f"http://{base}/parties/main/r2")
        assert other.json() == {"room": "r2", "n": 1}
    async with SqliteStorage(tmp_path / "rooms.db") as backend:
        assert await backend.get(RoomKey("main", "r1"), [b"n"]) == {b"n": b"\x14"}


async def test_alarm_fires_without_connections_and_room_id_works() -> None:
    app = App(storage="memory://")
    main = app.party()
    fired: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

    @main.on_request
    async def schedule(request: Request, room: Room) -> str:
        await room.storage.put("note", "set by request")
        await room.storage.set_alarm(time.time() + 0.05)
        return "scheduled"

    @main.on_alarm
    async def ring(room: Room) -> None:
        await fired.put((room.id, await room.storage.get("note")))

    async with serve(app) as base, httpx.AsyncClient() as client:
        r = await client.post(f"http://{base}/parties/main/quiet-room")
        assert r.text == "scheduled"
        assert await asyncio.wait_for(fired.get(), 5) == ("quiet-room", "set by request")
        storage = app.runtime.backplane.room("main", "quiet-room").storage
        await eventually(no_alarm(storage))


def no_alarm(storage: RoomStorage) -> Callable[[], Awaitable[bool]]:
    """A condition for :func:`eventually`: *storage* holds no alarm."""

    async def check() -> bool:
        return await storage.get_alarm() is None

    return check


async def test_failing_alarm_is_retried_with_backoff() -> None:
    app = App(storage="memory://", alarm_retry_delay=0.05, alarm_max_retries=4)
    main = app.party()
    attempts: list[float] = []
    done = asyncio.Event()

    @main.on_request
    async def schedule(request: Request, room: Room) -> str:
        await room.storage.set_alarm(time.time())
        return "ok"

    @main.on_alarm
    async def flaky(room: Room) -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise RuntimeError("not yet")
        await room.storage.put("cleaned", True)
        done.set()

    async with serve(app) as base, httpx.AsyncClient() as client:
        await client.post(f"http://{base}/parties/main/r")
        await asyncio.wait_for(done.wait(), 5)
        assert len(attempts) == 3
        assert attempts[1] - attempts[0] >= 0.05
        assert attempts[2] - attempts[1] >= 0.1
        room = app.runtime.backplane.room("main", "r")
        assert await room.storage.get("cleaned") is True
        await eventually(no_alarm(room.storage))


async def test_alarm_runs_on_start_first_after_restart(tmp_path: Path) -> None:
    """An alarm stored by one server is fired by the next: load, on_start, on_alarm."""
    db = f"sqlite://{tmp_path}/rooms.db"
    first = App(storage=db)
    first_main = first.party()

    @first_main.on_request
    async def schedule(request: Request, room: Room) -> str:
        await room.storage.set_alarm(time.time() + 3600)
        return "ok"

    @first_main.on_alarm
    async def never(room: Room) -> None:
        raise AssertionError("the first server must not fire the alarm")

    async with serve(first) as base, httpx.AsyncClient() as client:
        await client.post(f"http://{base}/parties/main/sleeper")
    # While no server runs, the alarm becomes due.
    async with SqliteStorage(tmp_path / "rooms.db") as backend:
        assert await backend.get_alarm(RoomKey("main", "sleeper")) is not None
        await backend.set_alarm(RoomKey("main", "sleeper"), time.time() - 1)

    second = App(storage=db)
    main = second.party()
    events: list[str] = []
    fired = asyncio.Event()

    @main.on_start
    async def boot(room: Room) -> None:
        events.append(f"start {room.id}")

    @main.on_alarm
    async def ring(room: Room) -> None:
        events.append(f"alarm {room.id}")
        fired.set()

    async with serve(second):
        await asyncio.wait_for(fired.wait(), 5)
    assert events == ["start sleeper", "alarm sleeper"]


async def test_idle_rooms_unload_and_reload() -> None:
    app = App(storage="memory://", idle_timeout=0.1)
    main = app.party()
    starts: list[str] = []

    @main.on_start
    async def boot(room: Room) -> None:
        starts.append(room.id)
        await room.storage.put("starts", (await room.storage.get("starts") or 0) + 1)

    @main.on_connect
    async def hello(connection: Connection, ctx: ConnectContext) -> None:
        connection.send(str(await connection.room.storage.get("starts")))

    def loaded() -> set[str]:
        return {room.id for room in app.runtime.backplane.rooms()}

    async with serve(app) as base:
        async with connect(f"ws://{base}/parties/main/a") as ws:
            assert await ws.recv() == "1"
            async with connect(f"ws://{base}/parties/main/b") as other:
                assert await other.recv() == "1"
            # b empties and is unloaded; a keeps its connection and stays.
            await eventually(lambda: loaded() == {"a"})
        await eventually(lambda: loaded() == set())
        async with connect(f"ws://{base}/parties/main/a") as ws:
            assert await ws.recv() == "2"  # on_start ran again, storage kept
        assert starts == ["a", "b", "a"]


async def test_rooms_with_a_pending_alarm_stay_loaded() -> None:
    app = App(storage="memory://", idle_timeout=0.05)
    main = app.party()

    @main.on_request
    async def schedule(request: Request, room: Room) -> str:
        if request.args.get("alarm"):
            await room.storage.set_alarm(time.time() + 3600)
        return "ok"

    @main.on_alarm
    async def ring(room: Room) -> None: ...

    async with serve(app) as base, httpx.AsyncClient() as client:
        await client.post(f"http://{base}/parties/main/waiting?alarm=1")
        await client.post(f"http://{base}/parties/main/done")
        await eventually(lambda: {r.id for r in app.runtime.backplane.rooms()} == {"waiting"})
        await app.runtime.backplane.room("main", "waiting").storage.delete_alarm()
        await eventually(lambda: not list(app.runtime.backplane.rooms()))


async def test_many_short_lived_rooms_leave_nothing_behind() -> None:
    app = App(storage="memory://", idle_timeout=0.05)
    main = app.party()

    @main.on_request
    async def touch(request: Request, room: Room) -> str:
        async with room.storage.transaction() as tx:
            await tx.put("seen", True)
        return room.id

    async with serve(app) as base, httpx.AsyncClient() as client:
        for batch in range(3):
            rooms = [f"room-{batch}-{i}" for i in range(200)]
            replies = await asyncio.gather(
                *(client.get(f"http://{base}/parties/main/{r}") for r in rooms)
            )
            assert [r.text for r in replies] == rooms
            await eventually(lambda: not list(app.runtime.backplane.rooms()))
            gc.collect()
            mine = [o for o in gc.get_objects() if isinstance(o, Room) and o.id in rooms]
            assert mine == []
            assert app.runtime.storage._locks == {}


async def test_connection_tags_and_get_connections_by_tag() -> None:
    app = App(storage="memory://")
    main = app.party()

    @main.connection_tags
    def tags(connection: Connection, ctx: ConnectContext) -> list[str]:
        raw = ctx.request.args.get("tags", "")
        return raw.split(",") if raw else []

    @main.on_connect
    def hello(connection: Connection, ctx: ConnectContext) -> None:
        connection.send(",".join(connection.tags))

    @main.on_request
    def by_tag(request: Request, room: Room) -> list[str]:
        return sorted(c.id for c in room.get_connections(request.args.get("tag")))

    async with serve(app) as base, httpx.AsyncClient() as client:
        url = f"ws://{base}/parties/main/r"
        async with (
            connect(f"{url}?_pk=ann&tags=admin,blue") as ann,
            connect(f"{url}?_pk=bob&tags=blue") as bob,
        ):
            assert await ann.recv() == "ann,admin,blue"  # the id comes first
            assert await bob.recv() == "bob,blue"
            r = await client.get(f"http://{base}/parties/main/r?tag=blue")
            assert r.json() == ["ann", "bob"]
            r = await client.get(f"http://{base}/parties/main/r?tag=admin")
            assert r.json() == ["ann"]
            r = await client.get(f"http://{base}/parties/main/r?tag=bob")
            assert r.json() == ["bob"]
            nine = ",".join(f"t{i}" for i in range(9))
            async with connect(f"{url}?_pk=max&tags={nine}") as full:
                frame = await full.recv()
                assert isinstance(frame, str)
                assert frame.split(",")[1:] == [f"t{i}" for i in range(9)]
            for bad in (",".join(f"t{i}" for i in range(10)), "ok,", "x" * 257):
                async with connect(f"{url}?tags={bad}") as refused:
                    with pytest.raises(ConnectionClosed) as info:
                        await refused.recv()
                    assert info.value.rcvd is not None
                    assert info.value.rcvd.code == 1011


async def test_room_to_room_fetch_and_socket() -> None:
    app = App(storage="memory://")
    main = app.party()
    user = app.party("user")
    closed: list[str] = []

    @user.on_request
    async def profile(request: Request, room: Room) -> dict[str, object]:
        return {
            "room": room.id,
            "method": request.method,
            "path": request.path,
            "query": request.args.get("q"),
            "header": request.headers.get("X-From"),
            "body": (await request.body()).decode(),
        }

    @user.on_connect
    def greet(connection: Connection, ctx: ConnectContext) -> None:
        connection.send(f"hi {connection.id}")

    @user.on_message
    def echo(message: str | bytes, sender: Connection) -> None:
        sender.send(message)
        if message == "bye":
            sender.close(4000, "asked")

    @user.on_close
    def gone(connection: Connection, code: int, reason: str) -> None:
        closed.append(f"{connection.id}:{code}")

    @main.on_request
    async def relay(request: Request, room: Room) -> Response | list[object]:
        target = room.parties["user"].get("alice")
        if request.args.get("socket"):
            sock = await target.socket("?_pk=bot")
            frames: list[object] = [await sock.recv()]
            await sock.send("ping")
            frames.append(await sock.recv())
            await sock.send("bye")
            frames.append(await sock.recv())
            try:
                await sock.recv()
            except SocketClosed as exc:
                frames.append(exc.code)
            return frames
        return await target.fetch(
            "/inbox?q=1", method="POST", headers={"X-From": room.id}, body="hello"
        )

    async with serve(app) as base, httpx.AsyncClient() as client:
        r = await client.get(f"http://{base}/parties/main/lobby")
        assert r.json() == {
            "room": "alice",
            "method": "POST",
            "path": "/parties/user/alice/inbox",
            "query": "1",
            "header": "lobby",
            "body": "hello",
        }
        r = await client.get(f"http://{base}/parties/main/lobby?socket=1")
        assert r.json() == ["hi bot", "ping", "bye", 4000]
        assert closed == ["bot:4000"]


async def test_unknown_party_names_the_known_ones() -> None:
    app = App(storage="memory://")
    main = app.party()

    @main.on_request
    async def relay(request: Request, room: Room) -> str:
        try:
            room.parties["nope"]
        except KeyError as exc:
            return str(exc)
        return "no error"

    async with serve(app) as base, httpx.AsyncClient() as client:
        r = await client.get(f"http://{base}/parties/main/x")
        assert "no party named 'nope'" in r.text
        assert "main" in r.text
