"""History and recovery after a reconnect, through real servers and real clients (websockets,
the Python PartySocket, the npm partysocket with the docs' snippet), across restarts."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from partydeco import App, Connection, Request, Room, SetupError
from partydeco.client import Backoff, PartySocket
from partydeco.historystore import PREFIX
from partydeco.storage import RoomStorage
from partydeco.testing import TestClient
from tests.support import Process, eventually, free_port, serve, start_process
from tests.support.js_driver import node_partysocket
from tests.support.presence_app import build
from tests.support.redis_server import RedisServer


def history_app(**options: Any) -> App:
    options.setdefault("storage", "memory://")
    options.setdefault("history", 100)
    return build(App(presence=True, presence_grace=0, **options))


async def frame(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


def url(base: str, user: str, room: str = "r", **query: str | int) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"ws://{base}/parties/main/{room}?token=t-{user}{extra}"


class Gate:
    """A PartySocket ``query`` function that holds reconnects while closed."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.open = asyncio.Event()
        self.open.set()
        self.queries: list[dict[str, str]] = []

    async def __call__(self) -> dict[str, str]:
        await self.open.wait()
        return {"token": f"t-{self.user}"}


def socket(base: str, gate: Gate) -> PartySocket:
    fast = Backoff(min_delay=0.05, max_delay=0.2)
    return PartySocket(
        base, "r", query=gate, id=f"{gate.user}-tab", connect_timeout=10, backoff=fast
    )


async def text(sock: PartySocket) -> str:
    async with asyncio.timeout(10):
        message = await sock.recv()
    assert isinstance(message, str)
    return message


async def until_data(ws: ClientConnection, data: str) -> dict[str, Any]:
    """Read frames until the envelope of the broadcast *data*."""
    while True:
        received = await frame(ws)
        if received.get("data") == data:
            return dict(received)


async def until_text(sock: PartySocket, wanted: str) -> list[str]:
    """Read messages until *wanted* (or one that starts with ``wanted[:-1]`` for a
    *wanted* ending in ``*``); all of them, in order."""
    seen = [await text(sock)]
    while not (seen[-1] == wanted or (wanted.endswith("*") and seen[-1].startswith(wanted[:-1]))):
        seen.append(await text(sock))
    return seen


# -- frames -----------------------------------------------------------------------------------


async def test_frames_carry_offsets_only_when_the_party_keeps_history() -> None:
    async with serve(history_app(history=0)) as base, connect(url(base, "alice")) as ws:
        await frame(ws)  # the presence list
        await ws.send("hi")
        assert await ws.recv() == "alice:hi"  # as without history
    async with serve(history_app()) as base, connect(url(base, "alice")) as ws:
        position = await frame(ws)
        assert position == {"type": "partydeco.position", "epoch": position["epoch"], "offset": 0}
        assert len(position["epoch"]) == 12
        await frame(ws)
        for n, text_ in enumerate(["hi", "there"], 1):
            await ws.send(text_)
            assert await frame(ws) == {
                "type": "partydeco.message", "offset": n, "data": f"alice:{text_}",
            }  # fmt: skip
        await ws.send("quiet:typing")  # history=False: as it is, no offset
        assert await ws.recv() == "quiet:typing"


async def test_json_broadcasts_are_kept_as_json_and_binary_as_it_is() -> None:
    app = App(storage="memory://", history=10)

    @app.party().on_message
    def relay(message: str | bytes, sender: Connection) -> None:
        sender.room.broadcast({"echo": message} if isinstance(message, str) else message)

    async with TestClient(app) as client, client.connect("r") as ws:
        await ws.receive_json()
        await ws.send("x")
        assert await ws.receive_json() == {
            "type": "partydeco.message", "offset": 1, "data": {"echo": "x"},
        }  # fmt: skip
        await ws.send(b"\x00\x01")
        assert await ws.receive() == b"\x00\x01"
        await ws.send("y")
        assert (await ws.receive_json())["offset"] == 2


# -- recovery -------------------------------------------------------------------------------


async def test_a_dropped_connection_gets_what_it_missed_in_order() -> None:
    async with serve(history_app()) as base, connect(url(base, "bob")) as bob:
        await frame(bob)
        await frame(bob)
        gate = Gate("alice")
        async with socket(base, gate) as alice:
            await alice.wait_open()
            await text(alice)  # the presence list; the position is the client's own
            await bob.send("m1")
            assert await text(alice) == "bob:m1"
            assert alice.recovery is not None
            epoch = alice.recovery.epoch
            assert (alice.recovery.offset, isinstance(epoch, str)) == (1, True)
            await alice.send("skip:mine")  # kept, but not for alice
            await until_data(bob, "skip:mine")
            gate.open.clear()
            await alice.send("drop")  # the server closes alice; her reconnect is held
            await eventually(lambda: not alice.is_open)
            for n in (3, 4, 5):
                await bob.send(f"m{n}")
            gate.open.set()
            missed = [await text(alice) for _ in range(3)]
            assert missed == ["bob:m3", "bob:m4", "bob:m5"]
            assert alice.url is not None and f"since=1&epoch={epoch}" in alice.url
            assert json.loads(await text(alice))["type"] == "partydeco.presence"
            await bob.send("live")
            assert await text(alice) == "bob:live"
            assert (alice.recovery.epoch, alice.recovery.offset) == (epoch, 6)


async def test_the_npm_partysocket_recovers_with_the_docs_snippet() -> None:
    async with serve(history_app()) as base, connect(url(base, "bob")) as bob:
        await frame(bob)
        await frame(bob)
        async with node_partysocket() as js:
            options = {"host": base, "room": "r", "minReconnectionDelay": 50,
                       "maxReconnectionDelay": 200}  # fmt: skip
            await js.open("alice", "t-alice", history=True, **options)
            await js.wait_event(lambda e: e.get("event") == "open")
            await bob.send("m1")
            await js.wait_event(lambda e: e.get("text") == "bob:m1")
            await js.request("set_token", sock="alice", token="wrong")  # reconnects fail (401)
            await js.send("alice", "drop")
            await js.wait_event(lambda e: e.get("event") == "close")
            for n in (2, 3):
                await bob.send(f"m{n}")
            await js.request("set_token", sock="alice", token="t-alice")
            await js.wait_event(lambda e: e.get("text") == "bob:m3")
            await bob.send("live")
            await js.wait_event(lambda e: e.get("text") == "bob:live")
            texts = [e["text"] for e in js.of("alice", "message")]
            assert [t for t in texts if t.startswith("bob:")] == ["bob:m1", "bob:m2", "bob:m3",
                                                                   "bob:live"]
            assert not js.of("alice", "resync")
            info = await js.request("info", sock="alice")
            assert "since=1&epoch=" in info["url"]


async def test_an_expired_or_unknown_position_gets_resync(tmp_path: Path) -> None:
    app = history_app(history=3, storage=str(tmp_path / "rooms.db"))
    async with serve(app) as base, connect(url(base, "bob")) as bob:
        epoch = (await frame(bob))["epoch"]
        await frame(bob)
        runtime = app.runtime
        assert runtime is not None
        room = runtime.backplane.room("main", "r")
        assert isinstance(room, Room)
        for n in range(1, 6):
            await bob.send(f"m{n}")
            await bob.recv()
            assert await room.history.store.flush()  # one stored row per broadcast
        async with connect(url(base, "alice", since=2, epoch=epoch)) as alice:
            assert [json.loads(await alice.recv())["data"] for _ in range(3)] == [
                "bob:m3", "bob:m4", "bob:m5",
            ]  # fmt: skip
            assert await frame(alice) == {"type": "partydeco.position", "epoch": epoch, "offset": 5}
        cases = {(1, epoch): "expired", (9, epoch): "unknown_offset", (5, "other"): "history_lost"}
        for (since, given), reason in cases.items():
            async with connect(url(base, "alice", since=since, epoch=given)) as alice:
                assert await frame(alice) == {
                    "type": "partydeco.resync", "epoch": epoch, "offset": 5, "reason": reason,
                }  # fmt: skip
        stored = await room.storage.list(prefix=PREFIX)
        assert [k for k in stored if k != PREFIX + "meta"] == [
            f"{PREFIX}{n:016x}" for n in (3, 4, 5)
        ]  # the rows the limits dropped are deleted: the storage keeps what memory keeps


async def test_a_client_that_missed_the_whole_history_gets_all_of_it() -> None:
    app = App(storage="memory://", history=512)
    main = app.party()
    main.on_message(lambda message, sender: None)

    @main.on_request
    def burst(request: Request, room: Room) -> dict[str, int]:
        for n in range(1, 601):
            room.broadcast({"n": n})
        return {"offset": room.history.offset}

    async with serve(app) as base:
        async with connect(f"ws://{base}/parties/main/r") as ws:
            epoch = (await frame(ws))["epoch"]
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://{base}/parties/main/r")
            assert answer.json() == {"offset": 600}
        async with connect(f"ws://{base}/parties/main/r?since=88&epoch={epoch}") as ws:
            replayed = [await frame(ws) for _ in range(512)]
            assert [m["data"]["n"] for m in replayed] == list(range(89, 601))
            assert await frame(ws) == {"type": "partydeco.position", "epoch": epoch,
                                       "offset": 600}  # fmt: skip


async def test_age_and_byte_limits() -> None:
    app = history_app(history=100, history_ttl=0.3, history_bytes=2000)
    async with TestClient(app) as client, client.connect("r", query={"token": "t-bob"}) as bob:
        epoch = (await bob.receive_json())["epoch"]
        await bob.receive_json()
        for n in range(1, 11):
            await bob.send(f"{n}:" + "x" * 400)
            await bob.receive_json()
        runtime = app.runtime
        assert runtime is not None
        room = runtime.backplane.room("main", "r")
        assert isinstance(room, Room)
        kept = len(room.history)
        assert 0 < kept < 5 and room.history.first == 11 - kept  # the bytes limit

        async def expired() -> bool:
            query = {"token": "t-a", "since": "9", "epoch": epoch}
            async with client.connect("r", query=query) as a:
                return bool((await a.receive_json()).get("reason") == "expired")

        await eventually(expired, message="the age limit did not drop the history")
        assert len(room.history) == 0


async def test_bad_recovery_values_get_an_error_frame() -> None:
    bad = {
        "since=abc&epoch=e": "since must be an offset",
        "since=-1&epoch=e": "since must be an offset",
        "since=1e3&epoch=e": "since must be an offset",
        "since=12345678901234567890&epoch=e": "since must be an offset",
        "since=1&epoch=no%20spaces": "epoch must be 1 to 64",
        f"since=1&epoch={'e' * 65}": "epoch must be 1 to 64",
        "since=1": "since and epoch go together",
        "epoch=e": "since and epoch go together",
    }
    async with serve(history_app()) as base:
        for query, detail in bad.items():
            async with connect(f"ws://{base}/parties/main/r?token=t-alice&{query}") as ws:
                error = await frame(ws)
                assert error["error"] == "invalid_recovery"
                assert error["detail"].startswith(detail)
                resync = await frame(ws)
                assert (resync["type"], resync["reason"]) == ("partydeco.resync", "invalid")
                await frame(ws)  # the presence list: the socket works on
                await ws.send("ok")
                assert json.loads(await ws.recv())["data"] == "alice:ok"


async def test_history_survives_idle_unloading(tmp_path: Path) -> None:
    app = history_app(storage=str(tmp_path / "rooms.db"), idle_timeout=0.01)
    async with serve(app) as base:
        async with connect(url(base, "bob")) as bob:
            epoch = (await frame(bob))["epoch"]
            await frame(bob)
            for n in (1, 2):
                await bob.send(f"m{n}")
                await bob.recv()
        runtime = app.runtime
        assert runtime is not None
        await eventually(lambda: not list(runtime.backplane.rooms()))  # unloaded when idle
        async with connect(url(base, "alice", since=1, epoch=epoch)) as alice:
            assert json.loads(await alice.recv())["data"] == "bob:m2"
            assert await frame(alice) == {"type": "partydeco.position", "epoch": epoch, "offset": 2}


async def test_a_broadcast_inside_a_rolled_back_transaction_is_still_kept() -> None:
    app = App(storage="memory://", history=10)

    @app.party().on_message
    async def relay(message: str | bytes, sender: Connection) -> None:
        storage = sender.room.storage
        try:
            async with storage.transaction() as tx:
                await tx.put("seen", message)
                sender.room.broadcast(message)
                raise RuntimeError("roll back")
        except RuntimeError:
            pass

    async with TestClient(app) as client, client.connect("r") as ws:
        await ws.receive_json()
        await ws.send("kept")
        assert (await ws.receive_json())["data"] == "kept"
        runtime = app.runtime
        assert runtime is not None
        room = runtime.backplane.room("main", "r")
        assert isinstance(room, Room)
        assert await room.history.store.flush()
        storage: RoomStorage = room.storage
        assert await storage.get("seen") is None
        assert (await storage.get(f"{PREFIX}{1:016x}"))[0][2].endswith('"data":"kept"}')


async def test_history_options_are_checked() -> None:
    for bad in ({"history": -1}, {"history": 1.5}, {"history_ttl": 0}, {"history_bytes": 0}):
        with pytest.raises(ValueError):
            App(**bad)
    with pytest.raises(ValueError, match="history must be at most half of max_pending_messages"):
        App(history=513)
    App(history=1000, max_pending_messages=2000)
    app = App(storage="memory://")
    app.party().on_message(lambda message, sender: None)
    async with TestClient(app) as client, client.connect("r"):
        runtime = app.runtime
        assert runtime is not None
        room = runtime.backplane.room("main", "r")
        assert isinstance(room, Room)
        with pytest.raises(SetupError, match="keeps no history"):
            room.history  # noqa: B018


# -- restarts ---------------------------------------------------------------------------------


def start_app(nodes: list[Process], port: int, env: dict[str, str], redis: str = "") -> Process:
    args = ["-m", "partydeco", "serve", "tests/support/presence_app.py", "--port", str(port)]
    if redis:
        args += ["--redis", redis]
    process = start_process(args, port=port, env=env)
    nodes.append(process)
    return process


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_history_survives_a_restart(
    backend: str, tmp_path: Path, nodes: list[Process], request: pytest.FixtureRequest
) -> None:
    env: dict[str, str] = {}
    redis = ""
    if backend == "sqlite":
        env["STORAGE"] = f"sqlite:///{tmp_path / 'rooms.db'}"
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        redis, env["REDIS_PREFIX"] = server.url, request.getfixturevalue("redis_prefix")
    port = free_port()
    server_process = start_app(nodes, port, env, redis)
    base = server_process.base
    gate = Gate("alice")
    async with socket(base, gate) as alice:
        await alice.wait_open()
        await text(alice)
        async with connect(url(base, "bob")) as bob:
            await frame(bob)
            await frame(bob)
            await bob.send("m1")
            await until_text(alice, "bob:m1")
            gate.open.clear()
            await alice.send("drop")
            await eventually(lambda: not alice.is_open)
            await bob.send("m2")  # kept before the restart only
            await until_data(bob, "bob:m2")
        await asyncio.to_thread(server_process.stop)  # SIGTERM: a clean shutdown stores history
        start_app(nodes, port, env, redis)
        async with connect(url(base, "bob")) as bob:
            await frame(bob)
            await frame(bob)
            await bob.send("m3")
            await until_data(bob, "bob:m3")
        gate.open.set()
        assert [await text(alice) for _ in range(2)] == ["bob:m2", "bob:m3"]
        assert json.loads(await text(alice))["type"] == "partydeco.presence"


@pytest.mark.parametrize("storage", ["sqlite", "memory"])
async def test_lost_history_changes_the_epoch(
    storage: str, tmp_path: Path, nodes: list[Process]
) -> None:
    env = {"STORAGE": f"sqlite:///{tmp_path / 'rooms.db'}" if storage == "sqlite" else "memory://"}
    port = free_port()
    server_process = start_app(nodes, port, env)
    base = server_process.base
    gate = Gate("alice")
    async with socket(server_process.base, gate) as alice:
        await alice.wait_open()
        await text(alice)
        async with connect(url(base, "bob")) as bob:
            await frame(bob)
            await frame(bob)
            await bob.send("m1")
            await until_text(alice, "bob:m1")
        assert alice.recovery is not None
        old = alice.recovery.epoch
        gate.open.clear()
        if storage == "sqlite":  # killed: what it had not stored may be lost
            server_process.popen.send_signal(signal.SIGKILL)
        await asyncio.to_thread(server_process.stop)  # memory storage loses everything anyway
        start_app(nodes, port, env)
        gate.open.set()
        resync = json.loads((await until_text(alice, '{"type":"partydeco.resync"*'))[-1])
        assert resync["type"] == "partydeco.resync" and resync["reason"] == "history_lost"
        assert resync["epoch"] != old and alice.recovery.epoch == resync["epoch"]
        async with connect(url(base, "bob")) as bob:
            await frame(bob)
            await frame(bob)
            await bob.send("again")
            assert (await until_text(alice, "bob:again"))[-1] == "bob:again"
