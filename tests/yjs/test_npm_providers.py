"""The real npm Yjs providers against partydeco.yjs through a real server.

``y-partykit/provider`` (YPartyKitProvider) and ``y-websocket`` (WebsocketProvider), with
the npm ``yjs``, run in Node (tests/js/ydriver.mjs); the app is tests/support/yjs_app.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from partydeco.storage.redis import RedisStorage
from tests.support import Process, free_port, serve, start_process
from tests.support.js_driver import NodePartySocket, node_partysocket
from tests.support.redis_server import RedisServer
from tests.support.yjs_app import build
from tests.support.yjs_peer import storage_url

Driver = NodePartySocket


@asynccontextmanager
async def providers() -> AsyncIterator[Driver]:
    async with node_partysocket("ydriver.mjs") as driver:
        yield driver


async def open_doc(
    driver: Driver, name: str, host: str, *, kind: str = "partykit", token: str = "editor-token",
    room: str = "r", synced: bool = True,
) -> None:
    await driver.request(
        "open", name=name, kind=kind, host=host, party="docs", room=room, token=token
    )
    if synced:
        await driver.wait_event(lambda e: e.get("event") == "synced" and e["name"] == name)


async def text_becomes(driver: Driver, name: str, text: str, seconds: float = 10) -> None:
    await driver.wait_event(
        lambda e: e.get("event") == "text" and e["name"] == name and e["text"] == text,
        seconds=seconds,
    )


async def server_text(host: str, room: str = "r") -> Any:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{host}/parties/docs/{room}?token=editor-token")
        assert response.status_code == 200, response.text
        return response.json()


async def test_y_partykit_and_y_websocket_clients_converge(tmp_path: Path) -> None:
    app = build(storage=f"sqlite:///{tmp_path}/rooms.db")
    async with serve(app) as host, providers() as driver:
        await open_doc(driver, "a", host, kind="partykit")
        await open_doc(driver, "b", host, kind="websocket")
        await driver.request("type", name="a", index=0, text="hello")
        await text_becomes(driver, "b", "hello")
        await driver.request("type", name="b", text=" world")
        await text_becomes(driver, "a", "hello world")
        assert (await server_text(host))["text"] == "hello world"
        state = await driver.request("state", name="a")
        assert state["synced"] and state["connected"]


async def test_awareness_is_relayed_and_removed_when_a_client_vanishes(tmp_path: Path) -> None:
    app = build(storage=f"sqlite:///{tmp_path}/rooms.db")
    async with serve(app) as host, providers() as driver:
        await open_doc(driver, "b", host)
        async with providers() as other:  # a second process, killed below
            await open_doc(other, "a", host)
            alice = (await other.request("state", name="a"))["clientID"]
            await other.request("awareness", name="a", state={"user": "alice", "cursor": 5})
            await driver.wait_event(
                lambda e: e.get("event") == "awareness"
                and e["states"].get(str(alice)) == {"user": "alice", "cursor": 5}
            )
            other._process.kill()  # no goodbye: only the server can remove alice
            await other._process.wait()
        await driver.wait_event(
            lambda e: e.get("event") == "awareness" and str(alice) not in e["states"]
        )


async def test_offline_edits_merge_on_reconnect(tmp_path: Path) -> None:
    app = build(storage=f"sqlite:///{tmp_path}/rooms.db")
    async with serve(app) as host, providers() as driver:
        await open_doc(driver, "a", host)
        await open_doc(driver, "b", host, kind="websocket")
        await driver.request("type", name="a", index=0, text="base.")
        await text_becomes(driver, "b", "base.")
        await driver.request("disconnect", name="a")
        await driver.wait_event(
            lambda e: e.get("event") == "status"
            and e["name"] == "a"
            and e["status"] == "disconnected"
        )
        await driver.request("type", name="a", text="[offline a]")
        await driver.request("type", name="b", index=0, text="[online b]")
        await text_becomes(driver, "b", "[online b]base.")
        await driver.request("connect", name="a")
        merged = "[online b]base.[offline a]"
        await text_becomes(driver, "a", merged)
        await text_becomes(driver, "b", merged)
        assert (await server_text(host))["text"] == merged


@pytest.fixture(params=["sqlite", "redis"])
def storage_of(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Makes the storage URL of one server run: SQLite in a file, or Redis (same data)."""
    if request.param == "sqlite":
        yield lambda: f"sqlite:///{tmp_path}/rooms.db"
        return
    redis: RedisServer = request.getfixturevalue("redis_server")
    prefix: str = request.getfixturevalue("redis_prefix")
    yield lambda: storage_url(RedisStorage(redis.url, prefix=prefix))


async def test_a_restart_keeps_the_document(storage_of: Any) -> None:
    port = free_port()
    async with providers() as driver:
        first = build(storage=storage_of())
        async with serve(first, port=port) as host:
            await open_doc(driver, "writer", host)
            for word in ("one ", "two ", "three"):
                await driver.request("type", name="writer", text=word)
            await text_becomes(driver, "writer", "one two three")
            assert (await server_text(host))["text"] == "one two three"
        # the server stopped: the writer keeps its copy, but stays away from now on
        await driver.request("disconnect", name="writer")
        second = build(storage=storage_of())
        async with serve(second, port=port) as host:
            await open_doc(driver, "fresh", host, kind="websocket")
            state = await driver.request("state", name="fresh")
            assert state["text"] == "one two three"  # from storage, nobody else is here


async def test_a_viewer_cannot_change_the_document(tmp_path: Path) -> None:
    app = build(storage=f"sqlite:///{tmp_path}/rooms.db")
    async with serve(app) as host, providers() as driver:
        await open_doc(driver, "editor", host)
        await open_doc(driver, "viewer", host, token="viewer-token")
        await driver.request("type", name="viewer", text="defaced")
        denied = await driver.wait_event(lambda e: e.get("event") == "denied")
        assert denied == {
            "event": "denied",
            "name": "viewer",
            "reason": "read-only: this connection may not change the document",
        }
        await driver.request("type", name="editor", text="real")
        # the viewer's own copy keeps its text, and gets the edit (the order of two inserts
        # at the start depends on the client ids)
        await driver.wait_event(
            lambda e: e.get("event") == "text" and e["name"] == "viewer"
            and e["text"] in ("defacedreal", "realdefaced")
        )
        assert (await server_text(host))["text"] == "real"
        assert (await driver.request("state", name="editor"))["text"] == "real"


async def test_a_malformed_update_closes_with_1007_and_the_room_lives_on(tmp_path: Path) -> None:
    app = build(storage=f"sqlite:///{tmp_path}/rooms.db")
    async with serve(app) as host, providers() as driver:
        await open_doc(driver, "a", host)
        await driver.request("type", name="a", text="kept")
        await driver.request("raw", name="a", bytes=[0, 2, 4, 1, 5, 255, 255])
        closed = await driver.wait_event(lambda e: e.get("event") == "close")
        assert (closed["code"], closed["reason"]) == (1007, "malformed Yjs update")
        await open_doc(driver, "b", host, kind="websocket")
        assert (await driver.request("state", name="b"))["text"] == "kept"
        assert (await server_text(host))["text"] == "kept"


def start_node(redis: RedisServer, prefix: str) -> Process:
    port = free_port()
    args = ["-m", "partydeco", "serve", "tests/support/yjs_app.py", "--port", str(port)]
    return start_process([*args, "--redis", redis.url], port=port, env={"REDIS_PREFIX": prefix})


async def test_one_document_across_two_processes_on_redis(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    nodes = [start_node(redis_server, redis_prefix) for _ in range(2)]
    try:
        async with providers() as driver:
            await open_doc(driver, "a", nodes[0].base)
            await open_doc(driver, "b", nodes[1].base, kind="websocket")
            await driver.request("type", name="a", text="from node 0;")
            await text_becomes(driver, "b", "from node 0;")
            await driver.request("type", name="b", text="from node 1")
            await text_becomes(driver, "a", "from node 0;from node 1")
            seen = [await server_text(node.base) for node in nodes]
            assert seen[0] == seen[1]  # one owner answers for both
            assert seen[0]["text"] == "from node 0;from node 1"
    finally:
        for node in nodes:
            node.stop()
    assert not [n for n in nodes if "Traceback" in n.output()]

