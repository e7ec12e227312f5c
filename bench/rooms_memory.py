"""Memory with many short-lived rooms: rooms are unloaded when idle, so it stays flat.

Usage: PYTHONPATH=. python bench/rooms_memory.py [ROUNDS] [ROOMS_PER_ROUND] [IDLE_TIMEOUT]
(an IDLE_TIMEOUT of e.g. 3600 shows the growth without unloading)
Each round sends one request (storage write inside a transaction) to each of
ROOMS_PER_ROUND fresh rooms, then unloads idle rooms; prints traced memory after
each round.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tracemalloc

from partydeco import App, Request, Room
from partydeco.server.runtime import Runtime


async def main(rounds: int, per_round: int) -> None:
    idle = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-6
    app = App(storage="memory://", idle_timeout=idle)
    main_party = app.party()

    @main_party.on_request
    async def touch(request: Request, room: Room) -> str:
        async with room.storage.transaction() as tx:
            await tx.put("seen", True)
        await room.storage.delete("seen")  # leaves no data behind: only rooms are measured
        return room.id

    runtime = Runtime(app)  # what a server builds as it starts, without serving
    tracemalloc.start()
    baseline = 0
    for r in range(rounds):
        for i in range(per_round):
            room = runtime.backplane.room("main", f"room-{r}-{i}")
            await room.request(Request("GET", f"/parties/main/room-{r}-{i}"))
        loaded = len(list(runtime.backplane.rooms()))
        await runtime.lifecycle.reap()
        gc.collect()
        current = tracemalloc.get_traced_memory()[0]
        if r == 0:
            baseline = current
        print(
            f"round {r}: {per_round} rooms served, {loaded} loaded before unloading, "
            f"{len(list(runtime.backplane.rooms()))} after; traced {current / 1024:8.1f} KiB "
            f"({(current - baseline) / 1024:+.1f} KiB since round 0)"
        )
    await runtime.storage.close()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(args or [5, 2000])))
