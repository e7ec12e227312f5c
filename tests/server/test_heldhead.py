"""``HeldHead``: a response's head leaves with the first write after it, in one send,
over a real asyncio transport on a socket pair."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from partydeco.server.heldhead import MERGE_LIMIT, HeldHead


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Any, socket.socket]]:
    """(a server transport's owner, holding a ``HeldHead``; the client's socket)."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    owner = SimpleNamespace()
    owner.transport = HeldHead(owner, transport, loop)
    yield owner, theirs
    transport.close()
    theirs.close()


def arrived(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 20)
    except BlockingIOError:
        return b""


async def test_the_head_waits_for_the_body_and_both_leave_in_one_send(pair: Any) -> None:
    owner, client = pair
    held = owner.transport
    held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert arrived(client) == b""  # nothing sent yet
    held.write(b"ok")
    # the transport wrote both at once: they are already in the client's buffer
    assert arrived(client) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    assert owner.transport is held.transport  # later writes skip the stand-in


async def test_a_head_alone_leaves_at_the_next_turn_of_the_loop(pair: Any) -> None:
    owner, client = pair
    owner.transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert arrived(client) == b""
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert arrived(client) == b"HTTP/1.1 200 OK\r\n\r\n"
    assert not isinstance(owner.transport, HeldHead)


async def test_close_sends_what_is_held_first(pair: Any) -> None:
    owner, client = pair
    held = owner.transport
    held.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")
    held.close()
    await asyncio.sleep(0.01)  # the transport closes on a later turn
    client.setblocking(True)
    client.settimeout(5)
    assert client.recv(1024) == b"HTTP/1.1 403 Forbidden\r\n\r\n"
    assert client.recv(1024) == b""  # then the end of the stream


async def test_a_large_body_follows_the_head_in_order_without_being_copied_onto_it(
    pair: Any,
) -> None:
    owner, client = pair
    held = owner.transport
    body = bytes(range(256)) * (MERGE_LIMIT // 256 + 1)
    held.write(b"head;")
    held.write(body)
    held.write(b";tail")  # a stale reference after it stepped aside still writes through
    received = b""
    for _ in range(1000):
        received += arrived(client)
        if len(received) == 5 + len(body) + 5:
            break
        await asyncio.sleep(0.001)
    assert received == b"head;" + body + b";tail"


async def test_empty_writes_hold_nothing(pair: Any) -> None:
    owner, client = pair
    held = owner.transport
    held.write(b"")
    held.write(b"head")
    assert arrived(client) == b""
    held.write(b"body")
    assert arrived(client) == b"headbody"
    assert held.is_closing() is False
    assert held.get_extra_info("socket") is held.transport.get_extra_info("socket")


def test_a_head_held_when_the_connection_is_lost_is_dropped_quietly() -> None:
    """On uvloop a write to a closed transport raises: the callback that later sends
    a head held alone must not, when the connection closed in the meantime."""
    uvloop = pytest.importorskip("uvloop")
    errors: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        ours, theirs = socket.socketpair()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        owner = SimpleNamespace()
        owner.transport = HeldHead(owner, transport, loop)
        theirs.close()
        transport.close()  # the client went; Uvicorn hears of it a turn later
        owner.transport.write(b"HTTP/1.1 200 OK\r\n\r\n")  # a response meanwhile
        for _ in range(5):
            await asyncio.sleep(0)

    uvloop.run(main())
    assert errors == []
