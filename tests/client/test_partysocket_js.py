"""The real ``partysocket`` npm package (1.3.0, in Node with ``ws``) against partydeco.

The Node side is ``tests/js/driver.mjs``; ``npm ci`` runs there when ``node_modules`` is missing.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from partydeco import App
from partydeco.client import PartySocket
from tests.support import Process, serve, start_process
from tests.support.js_driver import node_partysocket
from tests.support.party_app import build

NO_PINGS: dict[str, Any] = {"websocket_ping_interval": None}


def stop(server: Process) -> str:
    """Stop a server process and return its output (closing its pipe)."""
    server.stop()
    return server.output()


def is_(sock: str, kind: str, **fields: Any) -> Any:
    """An event predicate: socket ``sock`` emitted ``kind`` with these fields."""
    return lambda e: (
        e.get("sock") == sock
        and e.get("event") == kind
        and all(e.get(k) == v for k, v in fields.items())
    )


async def test_greeting_broadcast_and_binary_between_partysocket_and_python() -> None:
    async with serve(build(App()), **NO_PINGS) as host, node_partysocket() as node:
        await node.open("alice", "alice-token", host=host, room="lobby")
        await node.open("bob", "bob-token", host=host, room="lobby")
        assert await node.messages("alice", 1) == ["Hello alice from party!"]
        assert await node.messages("bob", 1) == ["Hello bob from party!"]
        for i in range(3):
            await node.send("alice", f"alice-{i}")
        assert await node.messages("bob", 4) == [
            "Hello bob from party!",
            "alice-0",
            "alice-1",
            "alice-2",
        ]
        # binary: partysocket -> partysocket (a Blob by default) and -> the Python client
        python = PartySocket(host, "lobby", query={"token": "bob-token"})
        async with python:
            assert await python.recv() == "Hello bob from party!"
            await node.send("alice", b"\x00\x01\xfe\xff")
            event = await node.wait_event(is_("bob", "message", bytes=[0, 1, 254, 255]))
            assert event["blob"] is True
            assert await python.recv() == b"\x00\x01\xfe\xff"
            await python.send(b"\x07\x08")
            await node.wait_event(is_("alice", "message", bytes=[7, 8]))
        assert node.of("alice", "message")[1:] == [
            {"event": "message", "sock": "alice", "bytes": [7, 8], "blob": True}
        ]
        info = await node.request("info", sock="alice")
        assert info["url"] == f"ws://{host}/parties/main/lobby?_pk={info['id']}&token=alice-token"


async def test_fetch_with_authorization_reaches_on_request() -> None:
    async with serve(build(App()), **NO_PINGS) as host, node_partysocket() as node:
        await node.open("alice", "alice-token", host=host, room="lobby")
        await node.wait_event(is_("alice", "open"))
        alice_id = (await node.request("info", sock="alice"))["id"]
        reply = await node.request(
            "fetch",
            options={"host": host, "room": "lobby", "token": "t1"},
            init={"method": "GET", "headers": {"Authorization": "Bearer bob-token"}},
        )
        assert reply["status"] == 200
        assert reply["url"] == f"http://{host}/parties/main/lobby?token=t1"  # no _pk
        body = json.loads(reply["body"])
        assert (body["userId"], body["ids"]) == ("bob", [alice_id])
        refused = await node.request(
            "fetch", options={"host": host, "room": "lobby", "token": "t1"}, init={}
        )
        assert (refused["status"], refused["body"]) == (401, "Unauthorized")


async def test_bad_token_is_refused_at_the_handshake() -> None:
    async with serve(build(App()), **NO_PINGS) as host, node_partysocket() as node:
        await node.open("mallory", "nope", host=host, room="lobby", maxRetries=0)
        await node.wait_event(is_("mallory", "close"))
        await node.wait_event(is_("mallory", "error"))
        assert node.of("mallory", "open") == [] and node.of("mallory", "message") == []
        # what partysocket cannot see (browsers hide it): the handshake was answered 401
        python = PartySocket(host, "lobby", query={"token": "nope"}, max_retries=0)
        refused = await asyncio.gather(python.wait_open(), return_exceptions=True)
        assert getattr(refused[0], "status", None) == 401
        async with httpx.AsyncClient() as client:
            room = await client.get(
                f"http://{host}/parties/main/lobby", headers={"Authorization": "Bearer bob-token"}
            )
        assert room.json()["connections"] == 0


async def test_keeps_its_id_across_a_server_restart_and_reconnects_alone() -> None:
    server = start_process(["-m", "tests.support.party_app"])
    port = server.port
    room_url = f"http://{server.base}/parties/main/lobby"
    auth = {"Authorization": "Bearer bob-token"}
    try:
        async with node_partysocket() as node, httpx.AsyncClient() as client:
            await node.open(
                "alice",
                "alice-token",
                host=server.base,
                room="lobby",
                minReconnectionDelay=50,
                maxReconnectionDelay=200,
            )
            assert await node.messages("alice", 1) == ["Hello alice from party!"]
            pk = (await node.request("info", sock="alice"))["id"]
            assert (await client.get(room_url, headers=auth)).json()["ids"] == [pk]

            await asyncio.to_thread(stop, server)  # SIGTERM: graceful, sockets closed 1001
            closed = await node.wait_event(is_("alice", "close"))
            assert closed["code"] == 1001
            server = await asyncio.to_thread(start_process, ["-m", "tests.support.party_app"], port)

            await node.wait_event(lambda e: len(node.of("alice", "open")) == 2)
            assert await node.messages("alice", 2) == ["Hello alice from party!"] * 2
            assert (await client.get(room_url, headers=auth)).json()["ids"] == [pk]
            info = await node.request("info", sock="alice")
            assert info["id"] == pk
            assert info["queryCalls"] >= 2  # the query function ran again for the reconnect
    finally:
        stop(server)
