"""Presence: who is in a room, through real servers and real clients (websockets, the npm
partysocket client, two processes on Redis)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from partydeco import App, ConnectContext, Connection, Lobby, Request, Room, SetupError
from partydeco.testing import TestClient
from tests.support import Process, eventually, free_port, serve, start_process
from tests.support.js_driver import node_partysocket
from tests.support.presence_app import build
from tests.support.redis_server import RedisServer


def presence_app(events: list[list[str]] | None = None, **options: Any) -> App:
    options.setdefault("presence_grace", 0)
    return build(App(storage="memory://", presence=True, **options), events)


@asynccontextmanager
async def tab(
    base: str, user: str, room: str = "r", **query: str
) -> AsyncIterator[ClientConnection]:
    params = "&".join(f"{k}={v}" for k, v in {"token": f"t-{user}", **query}.items())
    async with connect(f"ws://{base}/parties/main/{room}?{params}") as ws:
        yield ws


async def frame(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def get_presence(base: str, user: str = "admin", query: str = "", room: str = "r") -> Any:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"http://{base}/parties/main/{room}/presence{query}",
            headers={"Authorization": f"Bearer t-{user}"},
        )
    assert response.status_code == 200, response.text
    return response.json()


def users(snapshot: dict[str, Any]) -> dict[str, int]:
    return {entry["id"]: entry["connections"] for entry in snapshot["users"]}


async def test_three_tabs_of_one_user_are_one_entry() -> None:
    events: list[list[str]] = []
    async with serve(presence_app(events)) as base, tab(base, "bob") as bob:
        assert await frame(bob) == {
            "type": "partydeco.presence", "you": "bob",
            "users": [{"id": "bob", "connections": 1}], "count": 1, "anonymous": 0,
        }  # fmt: skip
        async with (
            tab(base, "alice") as one,
            tab(base, "alice") as two,
            tab(base, "alice") as three,
        ):
            assert await frame(bob) == {"type": "partydeco.join", "user": "alice", "count": 2}
            await eventually(lambda: len(events) == 6)
            snapshot = await frame(three)
            assert snapshot["you"] == "alice" and users(snapshot) == {"bob": 1, "alice": 3}
            page = await get_presence(base)
            assert page["count"] == 2 and users(page) == {"alice": 3, "bob": 1}
            await one.close()
            await two.close()
            await eventually(async_users_are(base, {"alice": 1, "bob": 1}))
            # Nothing reached bob for the two closed tabs: his own message comes next.
            await bob.send("still here")
            assert await bob.recv() == "bob:still here"
        assert await frame(bob) == {"type": "partydeco.leave", "user": "alice", "count": 1}
    assert [e for e in events if e[1] == "alice" and e[0] in ("join", "leave")] == [
        ["join", "alice"], ["leave", "alice"],
    ]  # fmt: skip


def async_users_are(base: str, expected: dict[str, int]) -> Any:
    async def check() -> bool:
        return users(await get_presence(base)) == expected

    return check


async def test_join_and_leave_come_in_the_room_s_order() -> None:
    events: list[list[str]] = []
    async with serve(presence_app(events)) as base, tab(base, "alice") as alice:
        await frame(alice)  # the snapshot
        async with tab(base, "bob") as bob:
            await frame(bob)
            await bob.send("hello")
            # alice learns that bob joined before anything bob broadcasts.
            assert await frame(alice) == {"type": "partydeco.join", "user": "bob", "count": 2}
            assert await alice.recv() == "bob:hello"
            await bob.send("bye")
            assert await alice.recv() == "bob:bye"
        # ... and that he left after his last message.
        assert await frame(alice) == {"type": "partydeco.leave", "user": "bob", "count": 1}
        async with tab(base, "bob"):
            assert await frame(alice) == {"type": "partydeco.join", "user": "bob", "count": 2}
        assert await frame(alice) == {"type": "partydeco.leave", "user": "bob", "count": 1}
    bob_events = [kind for kind, user in events if user == "bob"]
    # on_join before on_connect, on_leave after on_close, every time.
    assert bob_events == ["join", "connect", "close", "leave"] * 2


async def test_a_reconnecting_partysocket_does_not_flap() -> None:
    events: list[list[str]] = []
    app = presence_app(events, presence_grace=30)
    async with serve(app) as base, node_partysocket() as js:
        fast = {"host": base, "room": "r", "minReconnectionDelay": 50, "maxReconnectionDelay": 100}
        await js.open("alice", "t-alice", **fast)
        await js.open("bob", "t-bob", **fast)
        await js.wait_event(lambda e: e.get("sock") == "bob" and e.get("event") == "open")
        await js.wait_event(
            lambda e: "partydeco.join" in e.get("text", "") and e["sock"] == "alice"
        )
        await js.send("bob", "drop")  # the server closes bob (1012); partysocket reconnects
        await js.wait_event(lambda e: e.get("sock") == "bob" and e.get("event") == "close")
        await js.wait_event(lambda e: len(js.of("bob", "open")) == 2)
        await js.send("bob", "back")
        await js.wait_event(lambda e: e.get("sock") == "alice" and e.get("text") == "bob:back")
        seen = [json.loads(e["text"]) for e in js.of("alice", "message") if e["text"][0] == "{"]
        assert [m["type"] for m in seen] == ["partydeco.presence", "partydeco.join"]
        # bob's second socket got the list, with himself in it once.
        snapshots = [json.loads(e["text"]) for e in js.of("bob", "message") if e["text"][0] == "{"]
        assert [users(s) for s in snapshots] == [{"alice": 1, "bob": 1}] * 2
        assert users(await get_presence(base)) == {"alice": 1, "bob": 1}
    assert [kind for kind, user in events if user == "bob"] == [
        "join", "connect", "close", "connect", "close",
    ]  # fmt: skip


async def test_a_leave_comes_after_the_grace() -> None:
    events: list[list[str]] = []
    async with serve(presence_app(events, presence_grace=0.3)) as base, tab(base, "alice") as alice:
        await frame(alice)
        async with tab(base, "bob"):
            assert (await frame(alice))["type"] == "partydeco.join"
            assert users(await get_presence(base)) == {"alice": 1, "bob": 1}
        await eventually(lambda: ["close", "bob"] in events)
        # Closed, and still listed (with no connection) until the grace is over.
        assert users(await get_presence(base)) == {"alice": 1, "bob": 0}
        assert await frame(alice) == {"type": "partydeco.leave", "user": "bob", "count": 1}
        assert users(await get_presence(base)) == {"alice": 1}


async def test_anonymous_connections_are_counted_not_listed() -> None:
    async with serve(presence_app()) as base, tab(base, "alice") as alice:
        await frame(alice)
        async with connect(f"ws://{base}/parties/main/r?token=anon") as anon:
            snapshot = await frame(anon)
            assert snapshot["you"] is None
            assert users(snapshot) == {"alice": 1} and snapshot["anonymous"] == 1
            page = await get_presence(base)
            assert (page["count"], page["anonymous"]) == (1, 1)
            await anon.send("hi")
            assert await alice.recv() == "None:hi"  # no join was sent for it
        await eventually(lambda: _anonymous(base, 0))


async def _anonymous(base: str, count: int) -> bool:
    return bool((await get_presence(base))["anonymous"] == count)


async def test_a_big_room_gets_a_bounded_list_and_pages_over_http() -> None:
    names = [f"user{i:02d}" for i in range(12)]
    async with serve(presence_app(presence_snapshot=5)) as base:
        sockets = [await connect(f"ws://{base}/parties/main/r?token=t-{n}") for n in names]
        try:
            snapshot = await frame(sockets[-1])
            assert snapshot["count"] == 12
            assert [u["id"] for u in snapshot["users"]] == names[:5]  # the longest present
            listed: list[str] = []
            after = ""
            while True:
                page = await get_presence(base, query=f"?limit=5{after}")
                assert page["count"] == 12
                listed += [u["id"] for u in page["users"]]
                if page["next"] is None:
                    break
                after = f"&after={page['next']}"
            assert listed == names
        finally:
            for ws in sockets:
                await ws.close()
        async with httpx.AsyncClient() as client:
            url = f"http://{base}/parties/main/r/presence"
            anonymous = await client.get(url)
            assert (anonymous.status_code, anonymous.text) == (401, "Unauthorized")
            auth = {"Authorization": "Bearer t-admin"}
            for bad in ("0", "1001", "x", "-1"):
                answer = await client.get(url, params={"limit": bad}, headers=auth)
                assert answer.status_code == 400
                assert answer.text == "limit must be an integer from 1 to 1000"
            other = await client.get(f"http://{base}/parties/main/r/other", headers=auth)
            assert other.status_code == 404  # only .../presence is presence's


async def test_on_join_and_on_leave_run_without_telling_clients() -> None:
    app = App(storage="memory://", presence_grace=0)
    main = app.party()
    seen: list[str] = []

    @main.before_connect
    def authenticate(request: Request, lobby: Lobby) -> Request:
        if "user" in request.args:
            request.principal = request.args["user"]
        return request

    @main.on_join
    async def joined(user: str, room: Room) -> None:
        seen.append(f"join {user} {len(room.presence)}")

    @main.on_leave
    def left(user: str, room: Room) -> None:
        seen.append(f"leave {user} {len(room.presence)}")

    @main.on_connect
    def hello(connection: Connection, ctx: ConnectContext) -> None:
        connection.send("hello")

    async with TestClient(app) as client:
        async with client.connect("r", headers={"X-User-ID": "mallory"}) as ws:
            # The client's own X-User-ID is removed: no principal, no join.
            assert await ws.receive() == "hello"
        assert seen == []
        async with client.connect("r", query={"user": "alice"}) as ws:
            assert await ws.receive() == "hello"  # frames as without presence
            assert seen == ["join alice 1"]
        await eventually(lambda: len(seen) == 2)
    assert seen == ["join alice 1", "leave alice 0"]


async def test_presence_options_are_checked_and_per_party() -> None:
    for bad in ({"presence_grace": -1}, {"presence_snapshot": 1.5}, {"presence": "yes"}):
        with pytest.raises(ValueError):
            App(**bad)
    app = App(storage="memory://")
    app.party("chat").configure(presence=True)
    app.party("quiet").on_message(lambda message, sender: None)

    @app.party("chat").on_message
    def say(message: str | bytes, sender: Connection) -> None:
        sender.room.broadcast(message)

    async with TestClient(app) as client:
        async with client.connect("r", party="chat") as ws:
            assert (await ws.receive_json())["type"] == "partydeco.presence"
        async with client.connect("r", party="quiet") as ws:
            await ws.send("x")
        runtime = app.runtime
        assert runtime is not None
        quiet = runtime.backplane.room("quiet", "r")
        assert isinstance(quiet, Room)
        with pytest.raises(SetupError, match="tracks no presence"):
            quiet.presence  # noqa: B018


# -- two processes on Redis ----------------------------------------------------------------


def start_node(redis: RedisServer, prefix: str, **env: str) -> Process:
    port = free_port()
    args = ["-m", "partydeco", "serve", "tests/support/presence_app.py", "--port", str(port)]
    return start_process(
        [*args, "--redis", redis.url], port=port, env={"REDIS_PREFIX": prefix, **env}
    )



async def test_presence_is_the_same_across_two_processes_on_redis(
    redis_server: RedisServer, redis_prefix: str, nodes: list[Process]
) -> None:
    a = start_node(redis_server, redis_prefix)  # with history (100) too
    nodes.append(a)
    b = start_node(redis_server, redis_prefix)
    nodes.append(b)

    async def joined(ws: ClientConnection) -> dict[str, int]:
        assert (await frame(ws))["type"] == "partydeco.position"
        return users(await frame(ws))

    async with tab(a.base, "alice") as alice:
        epoch = (await frame(alice))["epoch"]
        assert users(await frame(alice)) == {"alice": 1}
        await alice.send("hello")  # offset 1, kept by the owner
        assert (await frame(alice))["data"] == "alice:hello"
        async with tab(b.base, "bob") as bob, tab(a.base, "bob") as bob2:
            assert await joined(bob) == {"alice": 1, "bob": 1}
            assert await joined(bob2) == {"alice": 1, "bob": 2}
            assert await frame(alice) == {"type": "partydeco.join", "user": "bob", "count": 2}
            async with tab(b.base, "carol") as carol:
                assert await joined(carol) == {"alice": 1, "bob": 2, "carol": 1}
                for ws in (alice, bob, bob2):
                    assert await frame(ws) == {"type": "partydeco.join", "user": "carol",
                                               "count": 3}
                for node in (a, b):  # either process answers the owner's list
                    assert users(await get_presence(node.base)) == {
                        "alice": 1, "bob": 2, "carol": 1,
                    }  # fmt: skip
            for ws in (alice, bob, bob2):
                assert await frame(ws) == {"type": "partydeco.leave", "user": "carol",
                                           "count": 2}
            await bob.close()
            await eventually(async_users_are(b.base, {"alice": 1, "bob": 1}))
        assert await frame(alice) == {"type": "partydeco.leave", "user": "bob", "count": 1}
    async def logs() -> list[Any]:
        async with httpx.AsyncClient() as client:
            auth = {"Authorization": "Bearer t-x"}
            return [
                (await client.get(f"http://{node.base}/parties/main/r/events", headers=auth)).json()
                for node in (a, b)
            ]

    async def alice_left() -> list[Any] | None:
        answers = await logs()
        return answers if ["leave", "alice"] in answers[0]["events"] else None

    answers = await eventually(alice_left)
    assert answers[0] == answers[1]  # both answered by the owner
    assert [e for e in answers[0]["events"] if e[0] in ("join", "leave")] == [
        ["join", "alice"], ["join", "bob"], ["join", "carol"], ["leave", "carol"],
        ["leave", "bob"], ["leave", "alice"],
    ]  # fmt: skip
    # Recovery through the process that does not own the room: the owner's history.
    async with tab(b.base, "dave", since="0", epoch=epoch) as dave:
        assert await frame(dave) == {"type": "partydeco.message", "offset": 1,
                                     "data": "alice:hello"}  # fmt: skip
        assert await frame(dave) == {"type": "partydeco.position", "epoch": epoch, "offset": 1}
