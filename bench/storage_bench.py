"""Storage micro-benchmark: ops/s and event-loop stalls per backend.

Usage: python bench/storage_bench.py [DIR]   (DIR defaults to a temporary directory)
Prints one line per backend and operation: operations per second, and the longest
time the event loop was blocked while they ran (measured by a 1 ms ticker task).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from partydeco.storage import MemoryStorage, RoomStorage, SqliteStorage, StorageBackend


async def measure(
    label: str, count: int, op: Callable[[int], Awaitable[object]], concurrency: int = 1
) -> None:
    stalls: list[float] = []
    stop = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            stalls.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    start = time.perf_counter()

    async def worker(w: int) -> None:
        for i in range(w, count, concurrency):
            await op(i)

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - start
    stop = True
    await tick
    worst = max(stalls, default=0.0) * 1000
    print(f"{label:<44} {count / elapsed:>9.0f} ops/s   worst loop gap {worst:6.1f} ms")


async def bench(name: str, backend: StorageBackend) -> None:
    async with backend:
        room = RoomStorage(backend, "main", "bench")
        value = {"n": 1, "text": "x" * 100}
        await measure(f"{name}: put (sequential)", 2000, lambda i: room.put(f"k{i}", value))
        await measure(
            f"{name}: put (32 concurrent)", 4000,
            lambda i: room.put(f"c{i}", value), concurrency=32,
        )
        rooms = [RoomStorage(backend, "main", f"r{i}") for i in range(32)]
        await measure(
            f"{name}: put (32 rooms concurrent)", 4000,
            lambda i: rooms[i % 32].put(f"k{i}", value), concurrency=32,
        )
        await measure(f"{name}: get", 5000, lambda i: room.get(f"k{i % 2000}"))
        await measure(
            f"{name}: list(prefix, limit=50)", 1000, lambda i: room.list(prefix="k1", limit=50)
        )

        async def incr(i: int) -> None:
            async with room.transaction() as tx:
                await tx.put("n", (await tx.get("n") or 0) + 1)

        await measure(f"{name}: transaction incr (8 concurrent)", 1000, incr, concurrency=8)


async def main() -> None:
    base = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    await bench("memory", MemoryStorage())
    await bench("sqlite FULL", SqliteStorage(base / "full.db"))
    await bench("sqlite NORMAL", SqliteStorage(base / "normal.db", synchronous="NORMAL"))


if __name__ == "__main__":
    asyncio.run(main())
