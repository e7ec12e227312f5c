"""Resident memory per idle connection and per empty room: ``python bench/memory.py``.

Starts each server (as ``bench/run.py`` does), opens CONNECTIONS idle WebSockets
spread over ROOMS rooms (each gets its ``hello`` first, then stays silent), and
reads the server's resident set size (``VmRSS``) before and after; for partydeco, first
sends one HTTP request to each of 10 x ROOMS fresh rooms (which stay loaded,
empty, for ``idle_timeout``) to price an empty room.
Raises the open-files limit to its hard limit first.

    python bench/memory.py                           # 10,000 connections, 1,000 rooms
    python bench/memory.py --servers partydeco --connections 2000 --rooms 200
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import SERVERS, start

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def rss_kib(pid: int) -> int:
    """The resident set size of *pid*, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def settle(pid: int) -> int:
    """RSS once it stopped changing (allocators release lazily)."""
    last = rss_kib(pid)
    for _ in range(20):
        await asyncio.sleep(0.25)
        now = rss_kib(pid)
        if abs(now - last) < 64:
            return now
        last = now
    return last


async def open_socket(
    port: int, room: str, index: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket that got its hello, then stays silent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    path = f"/parties/main/{room}?_pk=c{index}&token=bench-token"
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )  # fmt: skip
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {head[:40]!r}")
    while True:  # skip pings
        first, length = await reader.readexactly(2)
        payload = await reader.readexactly(length & 0x7F)
        if first & 0x0F != 9:
            break
    if payload != b"hello":
        raise RuntimeError("no hello")
    return reader, writer


async def get(port: int, room: str) -> None:
    """One authenticated HTTP request to *room* (which loads it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /parties/main/{room} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bench-token\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    response = await reader.read()
    writer.close()
    if not response.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET {room}: {response[:40]!r}")


async def gather_limited(coros: list, limit: int = 100) -> list:  # type: ignore[type-arg]
    """Run *coros* with at most *limit* at once."""
    gate = asyncio.Semaphore(limit)

    async def one(coro):  # type: ignore[no-untyped-def]
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def measure(name: str, connections: int, rooms: int, results: Path) -> dict[str, float]:
    """Per-connection and (for partydeco) per-room KiB for one server."""
    server = start(name, results, None)
    pid = server.process.pid
    try:
        warm = await gather_limited([open_socket(server.port, "warm", i) for i in range(50)])
        for _, writer in warm:
            writer.close()
        if name.startswith("partydeco"):
            await gather_limited([get(server.port, "warm") for _ in range(50)])
        await asyncio.sleep(0.5)
        out: dict[str, float] = {}
        if name.startswith("partydeco"):  # empty rooms first, on a heap no socket has grown
            base = await settle(pid)
            count = 10 * rooms
            await gather_limited([get(server.port, f"empty-{i}") for i in range(count)])
            out["kib_per_empty_room"] = (await settle(pid) - base) / count
        before = await settle(pid)
        t0 = time.monotonic()
        socks = await gather_limited(
            [open_socket(server.port, f"room-{i % rooms}", i) for i in range(connections)]
        )
        opened = time.monotonic() - t0
        after = await settle(pid)
        out |= {
            "rss_before_mib": before / 1024,
            "rss_connected_mib": after / 1024,
            "kib_per_connection": (after - before) / connections,
            "connect_seconds": opened,
        }
        for _, writer in socks:
            writer.close()
        return out
    finally:
        server.stop()


def main() -> None:
    """Measure and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rooms", type=int, default=1_000)
    parser.add_argument("--servers", default="partydeco,asgi-hypercorn,quart")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 1000  # this process and the server each hold one end
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < need:
        sys.exit(f"need {need} open files (ulimit -n); the hard limit is {hard}")
    results = Path(__file__).resolve().parent / "results" / time.strftime("memory-%Y%m%d-%H%M%S")
    results.mkdir(parents=True, exist_ok=True)
    print(f"{args.connections} idle connections over {args.rooms} rooms")
    print("| server | RSS before | RSS connected | KiB per connection | KiB per empty room |")
    print("|---|---|---|---|---|")
    for name in args.servers.split(","):
        if name not in SERVERS:
            sys.exit(f"unknown server {name!r}")
        m = asyncio.run(measure(name, args.connections, args.rooms, results))
        room = f"{m['kib_per_empty_room']:.2f}" if "kib_per_empty_room" in m else "-"
        print(
            f"| {name} | {m['rss_before_mib']:.1f} MiB | {m['rss_connected_mib']:.1f} MiB "
            f"| {m['kib_per_connection']:.2f} | {room} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
