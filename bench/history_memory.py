"""Memory per room with a full history: what keeping the last N broadcasts costs a room.

Usage: PYTHONPATH=. python bench/history_memory.py [ROOMS] [MESSAGE_BYTES ...]

For each message size and each history size (0 = off, 100, 500), loads ROOMS rooms
(SQLite storage in a temporary directory, the default ``history_bytes`` of 1 MiB),
broadcasts into each room enough messages to fill its history twice over, waits until
every history is stored, and prints the traced memory per room: the room itself, the
kept broadcasts in memory, and what the writer holds. Rooms have no connection, so the
numbers are the history's own cost.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import tracemalloc
from pathlib import Path

from partydeco import App, Room
from partydeco.server.runtime import Runtime

HISTORIES = (0, 100, 500)


async def per_room(history: int, rooms: int, size: int, directory: Path) -> tuple[float, int]:
    """Traced bytes per loaded room after filling its history; and how many it keeps."""
    app = App(storage=f"sqlite:///{directory}/h{history}-{size}.db", history=history,
              history_ttl=None)  # fmt: skip
    app.party().on_message(lambda message, sender: None)
    runtime = Runtime(app)
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    loaded: list[Room] = []
    for r in range(rooms):
        room = runtime.backplane.room("main", f"room-{r}")
        assert isinstance(room, Room)
        await room.start()
        for n in range(2 * max(history, 100)):
            head = f"{r}:{n}|"
            room.broadcast(head + "x" * (size - len(head)))
        loaded.append(room)
    if history:
        for room in loaded:
            assert await room.history.store.flush()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    kept = len(loaded[0].history) if history else 0
    await runtime.storage.close()
    return (after - before) / rooms, kept


async def main(rooms: int, sizes: list[int]) -> None:
    tracemalloc.start()
    with tempfile.TemporaryDirectory(prefix="partydeco-history-") as tmp:
        print(f"{rooms} rooms, SQLite, history_bytes 1 MiB (the default)\n")
        print("| message | history | kept | memory per room | per kept message |")
        print("|---|---|---|---|---|")
        for size in sizes:
            base = 0.0
            for history in HISTORIES:
                memory, kept = await per_room(history, rooms, size, Path(tmp))
                if history == 0:
                    base = memory
                each = f"{(memory - base) / kept:,.0f} B" if kept else "-"
                print(f"| {size} B | {history or 'off'} | {kept} | {memory / 1024:,.1f} KiB "
                      f"| {each} |")  # fmt: skip


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    message_sizes = [int(a) for a in sys.argv[2:]] or [100, 1000]
    asyncio.run(main(count, message_sizes))
