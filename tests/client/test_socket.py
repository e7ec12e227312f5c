"""The Python PartySocket against a real Hypercorn server on a loopback port."""

from __future__ import annotations

import asyncio
import json

import pytest

from partydeco.client import (
    Backoff,
    BufferFullError,
    ClosedByServerError,
    CloseInfo,
    HandshakeRejectedError,
    PartySocket,
    RetriesExhaustedError,
    SocketClosedError,
)
from tests.support.client_server import PartyEchoApp, free_port, running

FAST = Backoff(min_delay=0.01, max_delay=0.05, factor=2, jitter=0.5)


async def test_connects_with_pk_and_query_then_talks() -> None:
    async with (
        running() as server,
        PartySocket(
            server.host, "lobby", id="alice-1", query={"token": "good", "x": None}, backoff=FAST
        ) as socket,
    ):
        assert await socket.recv() == "hello alice-1"
        assert socket.url == f"ws://{server.host}/parties/main/lobby?_pk=alice-1&token=good"
        assert server.app.seen.connects == [("alice-1", {"_pk": "alice-1", "token": "good"})]
        assert await socket.send("echo:hi") is True
        assert await socket.recv() == "hi"
        await socket.send(b"\x00\x01\xff")
        assert await socket.recv() == b"\x00\x01\xff"
        await socket.send(bytearray(b"ba"))
        assert await socket.recv() == b"ba"


async def test_random_id_is_a_uuid_and_stable() -> None:
    a, b = PartySocket("localhost:1", "r"), PartySocket("localhost:1", "r")
    assert a.id != b.id and len(a.id) == 36
    assert a.room_url == "ws://localhost:1/parties/main/r"


async def test_broadcast_reaches_the_other_client_in_order() -> None:
    async with running() as server:
        a = PartySocket(server.host, "room", query={"token": "good"}, backoff=FAST)
        b = PartySocket(server.host, "room", query={"token": "good"}, backoff=FAST)
        async with a, b:
            assert await a.recv() == f"hello {a.id}"
            assert await b.recv() == f"hello {b.id}"
            for i in range(3):
                await a.send(f"m{i}")
            assert [await b.recv() for _ in range(3)] == ["m0", "m1", "m2"]


async def test_bad_token_is_refused_once_and_not_retried() -> None:
    async with running() as server:
        socket = PartySocket(server.host, "r", query={"token": "bad"}, backoff=FAST)
        with pytest.raises(HandshakeRejectedError) as caught:
            await socket.wait_open()
        assert caught.value.status == 401
        assert caught.value.body == b"Unauthorized"
        assert caught.value.attempts == 1
        with pytest.raises(HandshakeRejectedError):
            async for _ in socket:
                pass
        with pytest.raises(HandshakeRejectedError):
            await socket.send("x")
        assert len(server.app.seen.refused) == 1
        assert socket.close_info == CloseInfo(status=401, body=b"Unauthorized")
        await socket.close()


async def test_query_function_runs_per_attempt_and_retries_are_limited() -> None:
    calls: list[int] = []

    async def query() -> dict[str, str]:
        calls.append(len(calls))
        return {"token": f"bad-{len(calls)}"}

    async with running() as server:
        socket = PartySocket(
            server.host,
            "r",
            query=query,
            backoff=FAST,
            max_retries=2,
            should_reconnect=lambda info: True,
        )
        with pytest.raises(RetriesExhaustedError) as caught:
            await socket.wait_open()
        assert caught.value.info.status == 401
        assert caught.value.attempts == 3
        assert calls == [0, 1, 2]
        assert [q["token"] for q in server.app.seen.refused] == ["bad-1", "bad-2", "bad-3"]
        await socket.close()


async def test_token_refreshed_on_reconnect_after_a_retryable_close() -> None:
    tokens = iter(["good", "good"])
    seen_tokens: list[str] = []

    def query() -> dict[str, str]:
        token = next(tokens)
        seen_tokens.append(token)
        return {"token": token, "n": str(len(seen_tokens))}

    closes: list[CloseInfo] = []
    async with (
        running() as server,
        PartySocket(server.host, "r", query=query, backoff=FAST, on_close=closes.append) as socket,
    ):
        assert await socket.recv() == f"hello {socket.id}"
        await socket.send("close:1011")
        assert await socket.recv() == f"hello {socket.id}"  # reconnected on its own
        assert [(pk, q["n"]) for pk, q in server.app.seen.connects] == [
            (socket.id, "1"),
            (socket.id, "2"),
        ]
        assert closes == [CloseInfo(code=1011, reason="bye")]


@pytest.mark.parametrize("code", [1008, 4000, 4401, 4999])
async def test_terminal_close_code_stops_reconnecting(code: int) -> None:
    async with running() as server:
        socket = PartySocket(server.host, "r", query={"token": "good"}, backoff=FAST)
        assert await socket.recv() == f"hello {socket.id}"
        await socket.send(f"close:{code}")
        with pytest.raises(ClosedByServerError) as caught:
            await socket.recv()
        assert (caught.value.code, caught.value.reason) == (code, "bye")
        assert len(server.app.seen.connects) == 1
        await socket.close()


async def test_reconnects_after_server_restart_and_flushes_the_buffer() -> None:
    app = PartyEchoApp()
    port = free_port()
    opened = 0
    lost = asyncio.Event()

    def on_open() -> None:
        nonlocal opened
        opened += 1

    async with running(app, port) as server:
        socket = PartySocket(
            server.host,
            "r",
            query={"token": "good"},
            backoff=FAST,
            on_open=on_open,
            on_close=lambda info: lost.set(),
        )
        assert await socket.recv() == f"hello {socket.id}"
        await server.stop()
        async with asyncio.timeout(5):
            await lost.wait()
        # offline now: sends are buffered, in order
        assert not socket.is_open
        assert await socket.send("echo:one") is False
        assert await socket.send(b"two") is False
        assert socket.buffered >= 2
        await server.start()
        async with asyncio.timeout(5):
            received = [await socket.recv() for _ in range(3)]
        assert received == [f"hello {socket.id}", "one", b"two"]
        assert [pk for pk, _ in app.seen.connects] == [socket.id, socket.id]
        assert opened == 2
        await socket.close()


async def test_buffer_drops_oldest_when_full_then_flushes_on_open() -> None:
    port = free_port()  # nothing listens yet: attempts fail with connection refused
    socket = PartySocket(
        f"127.0.0.1:{port}", "r", query={"token": "good"}, backoff=FAST, max_buffered=2
    )
    for text in ("echo:a", "echo:b", "echo:c"):
        assert await socket.send(text) is False
    assert (socket.buffered, socket.dropped) == (2, 1)
    async with running(port=port):
        assert [await socket.recv() for _ in range(3)] == [f"hello {socket.id}", "b", "c"]
    await socket.close()


async def test_buffer_overflow_error_policy() -> None:
    socket = PartySocket(
        f"127.0.0.1:{free_port()}", "r", backoff=FAST, max_buffered=1, overflow="error"
    )
    await socket.send("a")
    with pytest.raises(BufferFullError) as caught:
        await socket.send("b")
    assert caught.value.limit == 1
    assert socket.drain_buffered() == ["a"]
    assert socket.buffered == 0
    await socket.close()


async def test_connect_timeout_counts_as_a_failed_attempt() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # accept the TCP connection, never answer the handshake

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        socket = PartySocket(
            f"127.0.0.1:{port}", "r", backoff=FAST, connect_timeout=0.2, max_retries=1
        )
        with pytest.raises(RetriesExhaustedError) as caught:
            await socket.wait_open()
        assert isinstance(caught.value.info.error, TimeoutError)
        assert caught.value.attempts == 2
        assert len(writers) == 2
        await socket.close()
        for writer in writers:
            writer.close()
            await writer.wait_closed()


async def test_close_ends_iteration_and_tells_the_server() -> None:
    async with running() as server:
        socket = PartySocket(server.host, "r", query={"token": "good"}, backoff=FAST)
        await socket.wait_open()
        await socket.close(4000, "done")
        await server.app.seen.wait_for(lambda: len(server.app.seen.disconnects) == 1)
        # Hypercorn 0.18 reports 1006 for every client-initiated close, so only the id is checked
        assert [pk for pk, _ in server.app.seen.disconnects] == [socket.id]
        assert not socket.is_open
        assert [m async for m in socket] == [f"hello {socket.id}"]  # kept, then the end
        with pytest.raises(SocketClosedError):
            await socket.send("x")
        with pytest.raises(SocketClosedError):
            await socket.recv()
        await socket.close()  # idempotent


async def test_reconnect_restarts_a_socket_that_gave_up() -> None:
    token = "bad"
    async with running() as server:
        socket = PartySocket(server.host, "r", query=lambda: {"token": token}, backoff=FAST)
        with pytest.raises(HandshakeRejectedError):
            await socket.wait_open()
        token = "good"
        await socket.reconnect()
        await socket.wait_open()
        assert await socket.recv() == f"hello {socket.id}"
        await socket.close()


async def test_fetch_builds_the_room_url_without_pk() -> None:
    async with running() as server:
        response = await PartySocket.fetch(
            server.host,
            "lobby",
            party="chat",
            path="stats/today",
            query=lambda: {"token": "t"},
            method="POST",
            headers={"Authorization": "Bearer abc"},
            content=b"payload",
        )
        assert response.status_code == 200
        assert json.loads(response.text) == {
            "method": "POST",
            "path": "/parties/chat/lobby/stats/today",
            "query": {"token": "t"},
            "authorization": "Bearer abc",
            "body": "payload",
        }


async def test_close_while_an_attempt_hangs_returns_promptly() -> None:
    writers: list[asyncio.StreamWriter] = []
    reached = asyncio.Event()

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        reached.set()

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        socket = PartySocket(f"127.0.0.1:{port}", "r", connect_timeout=30)
        socket.start()
        async with asyncio.timeout(5):
            await reached.wait()  # the attempt reached the server and waits for an answer
        async with asyncio.timeout(1):
            await socket.close()
        assert [m async for m in socket] == []
        for writer in writers:
            writer.close()
            await writer.wait_closed()


@pytest.mark.parametrize(("min_uptime", "expected"), [(0.0, [1, 1, 1]), (60.0, [1, 2, 3])])
async def test_retry_count_resets_only_after_min_uptime(
    min_uptime: float, expected: list[int]
) -> None:
    async with (
        running() as server,
        PartySocket(
            server.host, "r", query={"token": "good"}, backoff=FAST, min_uptime=min_uptime
        ) as socket,
    ):
        counts = []
        assert await socket.recv() == f"hello {socket.id}"
        for _ in range(3):
            await socket.send("close:1011")
            assert await socket.recv() == f"hello {socket.id}"
            counts.append(socket.retry_count)
        assert counts == expected


async def test_iteration_survives_a_manual_reconnect() -> None:
    async with (
        running() as server,
        PartySocket(server.host, "r", query={"token": "good"}, backoff=FAST) as socket,
    ):
        received: list[object] = []
        second_hello = asyncio.Event()

        async def consume() -> None:
            async for message in socket:
                received.append(message)
                if len(received) == 2:
                    second_hello.set()

        consumer = asyncio.create_task(consume())
        await socket.wait_open()
        await server.app.seen.wait_for(lambda: len(server.app.seen.connects) == 1)
        await socket.reconnect()
        async with asyncio.timeout(5):
            await second_hello.wait()
        assert received == [f"hello {socket.id}"] * 2
        assert not consumer.done()  # still iterating: reconnect() does not end the stream
        await socket.close()
        async with asyncio.timeout(5):
            await consumer
