"""Scale-out benchmark: partydeco on Redis with 1 and 2 worker processes.

Usage: python bench/redis_bench.py [--quick]

Starts its own ``redis-server`` (no persistence) on a free port and serves
``tests/cluster_app.py`` with ``partydeco serve --redis URL [--workers 2]``; the
clients run in this process (websockets). Measures:

- latency: one sender, one receiver in a room, a message at a time (the app
  broadcasts each frame): both sockets on the owner (local) versus both on another
  process (relayed: edge -> owner -> edge, two hops through Redis);
- fan-out: one room, one sender, many receivers; frames delivered per second;
- many rooms: many rooms of two clients each, everyone sending; frames delivered
  per second.

On a 2-core machine the clients share the CPUs with the servers and Redis, so the
numbers are lower bounds.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
QUICK = "--quick" in sys.argv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no"],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait()


@contextmanager
def server(redis_url: str, workers: int = 1, prefix: str = "bench") -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "partydeco", "serve", "tests/cluster_app.py",
            "--port", str(port), "--redis", redis_url]
    if workers > 1:
        args += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_PREFIX": prefix}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        time.sleep(0.5 if workers > 1 else 0)  # let every worker start listening
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def join(base: str, room: str, user: str) -> tuple[ClientConnection, dict[str, int]]:
    ws = await connect(f"ws://{base}/parties/main/{room}?token=t-{user}&_pk={user}",
                       max_queue=None)
    hello = json.loads(await ws.recv())
    return ws, {"pid": hello["pid"], "edge": hello["edge"]}


async def latency(sender: ClientConnection, receiver: ClientConnection, count: int) -> list[float]:
    """Send one frame, time until the receiver has the broadcast copy; the sender's
    own copy is read before the next frame so nothing queues up."""
    samples = []
    for i in range(count):
        start = time.perf_counter()
        await sender.send(f"m{i}")
        expected = f":m{i}"
        while not str(await receiver.recv()).endswith(expected):
            pass
        samples.append((time.perf_counter() - start) * 1000)
        while not str(await sender.recv()).endswith(expected):
            pass
    return samples


def describe(label: str, samples: list[float]) -> None:
    samples.sort()
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(f"  {label:<46} median {statistics.median(samples):6.2f} ms   p99 {p99:6.2f} ms")


async def bench_latency(redis_url: str) -> None:
    count = 200 if QUICK else 1000
    print("latency (one message at a time, the app broadcasts it):")
    with server(redis_url, prefix="lat") as a, server(redis_url, prefix="lat") as b:
        owner_a, _ = await join(a, "local", "a1")
        owner_b, _ = await join(a, "local", "a2")
        anchor, info = await join(a, "relay", "anchor")  # a owns the second room too
        edge_a, one = await join(b, "relay", "b1")
        edge_b, _ = await join(b, "relay", "b2")
        assert one["pid"] == info["pid"] != one["edge"], "the relay room must be owned by a"
        await latency(owner_a, owner_b, 50)  # warm up
        await latency(edge_a, edge_b, 50)
        describe("local: both sockets on the owner", await latency(owner_a, owner_b, count))
        describe("relayed: both on another process (2 hops)", await latency(edge_a, edge_b, count))
        for ws in (owner_a, owner_b, anchor, edge_a, edge_b):
            await ws.close()


async def bench_fanout(redis_url: str, workers: int) -> None:
    receivers = 50 if QUICK else 200
    frames = 50 if QUICK else 200
    with server(redis_url, workers, prefix=f"fan{workers}") as base:
        clients = [await join(base, "fan", f"u{i}") for i in range(receivers)]
        sockets = [ws for ws, _ in clients]
        relayed = sum(1 for _, info in clients if info["edge"] != info["pid"])
        sender = sockets[0]

        async def drain(ws: ClientConnection) -> None:
            for _ in range(frames):
                await ws.recv()

        start = time.perf_counter()
        readers = [asyncio.create_task(drain(ws)) for ws in sockets]
        for i in range(frames):
            await sender.send(f"f{i}")
        await asyncio.gather(*readers)
        elapsed = time.perf_counter() - start
        total = receivers * frames
        print(f"  fan-out, {workers} worker(s): {receivers} receivers ({relayed} relayed) x "
              f"{frames} frames: {total / elapsed:8.0f} deliveries/s")
        for ws in sockets:
            await ws.close()


async def bench_rooms(redis_url: str, workers: int) -> None:
    rooms = 50 if QUICK else 200
    frames = 20 if QUICK else 50
    with server(redis_url, workers, prefix=f"rooms{workers}") as base:
        pairs = []
        relayed = 0
        for r in range(rooms):
            first, one = await join(base, f"room{r}", "x")
            second, two = await join(base, f"room{r}", "y")
            relayed += (one["edge"] != one["pid"]) + (two["edge"] != two["pid"])
            pairs.append((first, second))
        sockets = [ws for pair in pairs for ws in pair]

        async def run(ws: ClientConnection) -> None:
            for i in range(frames):
                await ws.send(f"r{i}")
            for _ in range(2 * frames):  # own frames and the peer's
                await ws.recv()

        start = time.perf_counter()
        await asyncio.gather(*(run(ws) for ws in sockets))
        elapsed = time.perf_counter() - start
        total = len(sockets) * 2 * frames
        print(f"  many rooms, {workers} worker(s): {rooms} rooms x 2 clients ({relayed} relayed) "
              f"x {frames} frames: {total / elapsed:8.0f} deliveries/s")
        for ws in sockets:
            await ws.close()


async def main() -> None:
    with redis_server() as redis_url:
        await bench_latency(redis_url)
        print("throughput (frames delivered to clients per second):")
        for workers in (1, 2):
            await bench_fanout(redis_url, workers)
        for workers in (1, 2):
            await bench_rooms(redis_url, workers)


if __name__ == "__main__":
    asyncio.run(main())
