"""A write burst for the kill -9 test: prints each write after it committed.

Usage: python tests/support/storage_burst.py DB_PATH [synchronous]
Four writers run at once; each commit writes ``a<i>`` and ``b<i>`` together (a
transaction), then prints ``<i>``.
"""

from __future__ import annotations

import asyncio
import sys

from partydeco.storage import RoomStorage, SqliteStorage


async def writer(storage: RoomStorage, worker: int) -> None:
    i = 0
    while True:
        n = worker * 1_000_000 + i
        if i % 2:
            await storage.put({f"a{n}": n, f"b{n}": "x" * 200})
        else:
            async with storage.transaction() as tx:
                await tx.put(f"a{n}", n)
                await tx.put(f"b{n}", "x" * 200)
        print(n, flush=True)
        i += 1


async def main() -> None:
    sync = sys.argv[2] if len(sys.argv) > 2 else "FULL"
    backend = SqliteStorage(sys.argv[1], synchronous="NORMAL" if sync == "NORMAL" else "FULL")
    async with backend:
        storage = RoomStorage(backend, "main", "burst")
        await asyncio.gather(*(writer(storage, w) for w in range(4)))


if __name__ == "__main__":
    asyncio.run(main())
