"""Limits per room, per client address, per connection, on a real server with real clients."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from partydeco import App, Party
from partydeco.security.limits import RateTable
from tests.support import ROOT, eventually, serve
from tests.support.security_kit import Seen, echo_app, open_ws, refusal, ws_status


async def test_room_capacity_answers_503_and_frees_slots_on_close() -> None:
    seen = Seen()
    app = echo_app(seen, max_connections_per_room=2)
    async with serve(app) as base:
        first = await open_ws(base, "/parties/main/full")
        second = await open_ws(base, "/parties/main/full")
        status, _, body = await refusal(base, "/parties/main/full")
        assert (status, body) == (503, b"Room is full")
        assert seen.hooks == 2  # the refused handshake never reached the hook
        assert await ws_status(base, "/parties/main/other") == 101  # other rooms are open
        await first.close()
        await asyncio.wait_for(seen.closed.wait(), 5)
        third = await open_ws(base, "/parties/main/full")
        await second.close()
        await third.close()
    assert app.runtime.guard.per_room == {} and app.runtime.guard.per_address == {}


async def test_per_party_room_capacity() -> None:
    seen = Seen()
    app = echo_app(seen)
    app.configure_party("main", max_connections_per_room=1)
    async with serve(app) as base:
        ws = await open_ws(base)
        assert (await refusal(base))[0] == 503
        await ws.close()


async def test_connections_per_address_answer_429() -> None:
    seen = Seen()
    app = echo_app(seen, max_connections_per_address=3, limit_loopback=True)
    async with serve(app) as base:
        sockets = [await open_ws(base, f"/parties/main/room-{i}") for i in range(3)]
        status, _, body = await refusal(base, "/parties/main/room-9")
        assert (status, body) == (429, b"Too many connections from this address")
        await sockets[0].close()
        await eventually(lambda: app.runtime.guard.per_address.get("127.0.0.1") == 2)
        sockets[0] = await open_ws(base, "/parties/main/room-9")
        for ws in sockets:
            await ws.close()


async def test_handshake_rate_answers_429_with_retry_after() -> None:
    seen = Seen()
    app = echo_app(seen, handshake_rate=0.5, handshake_burst=3, limit_loopback=True)
    async with serve(app) as base:
        for _ in range(3):
            assert await ws_status(base) == 101
        status, headers, body = await refusal(base)
        assert status == 429
        assert body == b"Too many connection attempts; retry later"
        assert 1 <= int(headers["retry-after"]) <= 2
        # refused handshakes count too, and never reach a hook
        assert (await refusal(base))[0] == 429
    assert seen.hooks == 3


async def test_loopback_clients_are_not_throttled_by_default() -> None:
    seen = Seen()
    app = echo_app(seen, handshake_rate=0.5, handshake_burst=1, max_connections_per_address=1)
    async with serve(app) as base:
        sockets = [await open_ws(base, f"/parties/main/room-{i}") for i in range(3)]
        assert await ws_status(base) == 101
        for ws in sockets:
            await ws.close()
    assert seen.hooks == 4


async def test_failed_hooks_release_their_slots() -> None:
    app = App(storage="memory://", max_connections_per_room=1, max_connections_per_address=1)
    room = Party("main", app)

    @room.before_connect
    async def refuse(request, lobby):  # type: ignore[no-untyped-def]
        raise PermissionError("go away")

    async with serve(app) as base:
        for _ in range(3):
            assert (await refusal(base))[0] == 401
    assert app.runtime.guard.per_room == {} and app.runtime.guard.per_address == {}


async def test_message_rate_over_the_limit_closes_with_1008() -> None:
    seen = Seen()
    app = echo_app(seen, max_messages_per_second=5, message_burst=10)
    async with serve(app) as base:
        ws = await open_ws(base)
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                for i in range(200):
                    await ws.send(f"m{i}")
                while True:
                    await ws.recv()
        assert ws.close_code == 1008
        assert ws.close_reason == "message rate exceeded"
        await asyncio.wait_for(seen.closed.wait(), 5)
    assert 10 <= len(seen.messages) <= 15
    assert seen.closes == [(1008, "message rate exceeded")]


async def test_message_rate_drop_keeps_the_connection() -> None:
    seen = Seen()
    app = echo_app(seen, max_messages_per_second=20, message_burst=10, message_rate_action="drop")
    async with serve(app) as base:
        ws = await open_ws(base)
        started = time.monotonic()
        for i in range(200):
            await ws.send(f"m{i}")
        # a probe gets through once the bucket refills: the connection is still open
        got: list[str | bytes] = []

        async def probe() -> bool:
            await ws.send("probe")
            try:
                while True:
                    message = await asyncio.wait_for(ws.recv(), 0.2)
                    got.append(message)
                    if message == "probe":
                        return True
            except TimeoutError:
                return False

        async with asyncio.timeout(5):
            while not await probe():
                pass
        elapsed = time.monotonic() - started
        await ws.close()
    flood = [m for m in seen.messages if m != "probe"]
    assert 10 <= len(flood) <= 10 + 20 * elapsed + 1
    assert len(flood) < 200


async def test_flood_does_not_delay_others_in_the_room() -> None:
    """One client floods from another process; another's messages still reach a third
    promptly, and the flood's excess is dropped rather than relayed."""
    app = App(
        storage="memory://",
        max_messages_per_second=50,
        message_burst=50,
        message_rate_action="drop",
    )
    room = Party("main", app)

    @room.on_message
    async def relay(message, sender):  # type: ignore[no-untyped-def]
        sender.room.broadcast(message, without=[sender.id])

    async with serve(app) as base:
        url = f"ws://{base}/parties/main/busy"
        # max_queue=None: frames left unread must not stall these clients' closing handshake
        async with (
            connect(url, max_queue=None) as listener,
            connect(url, max_queue=None) as talker,
        ):
            flooder = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "tests" / "support" / "flooder.py"), url, "30",
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert flooder.stdout is not None
            try:
                async with asyncio.timeout(10):
                    assert await flooder.stdout.readline() == b"open\n"
                latencies: list[float] = []
                flood_seen = 0

                async def listen() -> None:
                    nonlocal flood_seen
                    while len(latencies) < 20:
                        message = await listener.recv()
                        if isinstance(message, str) and message.startswith("flood"):
                            flood_seen += 1
                        else:
                            latencies.append(time.monotonic() - json.loads(message)["t"])

                listening = asyncio.create_task(listen())
                for _ in range(20):
                    await talker.send(json.dumps({"t": time.monotonic()}))
                    await asyncio.sleep(0.05)  # the talker's pace, not a wait for a condition
                async with asyncio.timeout(10):
                    await listening
                    # it really flooded while the talker talked
                    assert await flooder.stdout.readline() == b"sent 1000\n"
            finally:
                if flooder.returncode is None:
                    flooder.kill()
                await flooder.wait()
            assert max(latencies) < 0.5, latencies
            assert flood_seen <= 50 + 50 * 3  # the excess was dropped, not relayed
            assert listener.close_code is None  # never pushed out as a slow consumer


def test_rate_table_memory_is_bounded() -> None:
    table = RateTable(rate=1.0, burst=5, max_entries=100)
    for i in range(10_000):
        table.take(f"10.0.{i // 256}.{i % 256}", now=0.0)
    assert len(table) == 100
    # idle entries (full again after burst / rate = 5 s) are dropped as new keys arrive
    table.take("fresh-1", now=100.0)
    assert len(table) == 1
    for _ in range(4):  # one of the five tokens was taken above
        assert table.take("fresh-1", now=100.0) == 0.0
    assert table.take("fresh-1", now=100.0) == pytest.approx(1.0)  # one second to the next
    assert table.take("fresh-1", now=101.0) == 0.0


async def test_room_ids_longer_than_the_limit_get_414_before_any_hook() -> None:
    seen = Seen()
    app = echo_app(seen)  # max_room_id_length: 256
    async with serve(app) as base:
        assert await ws_status(base, "/parties/main/" + "r" * 256) == 101
        status, _, body = await refusal(base, "/parties/main/" + "r" * 257)
        assert (status, body) == (414, b"Room id is longer than 256 characters")
        async with httpx.AsyncClient() as http:
            long = await http.get(f"http://{base}/parties/main/{'r' * 30_000}")
            fits = await http.get(f"http://{base}/party/{'r' * 256}")
    assert long.status_code == 414 and fits.status_code == 200
    assert seen.hooks == 2  # the long ids reached no hook


async def test_the_room_id_limit_is_configurable_and_counts_the_raw_segment() -> None:
    app = echo_app(Seen(), max_room_id_length=9)
    async with serve(app) as base, httpx.AsyncClient() as http:
        assert (await http.get(f"http://{base}/parties/main/abc%20defg")).status_code == 414
        assert (await http.get(f"http://{base}/parties/main/abc%20def")).status_code == 200
    with pytest.raises(ValueError, match="max_room_id_length must be a positive number"):
        App(max_room_id_length=0)
