"""What history adds to one ``room.broadcast``, in process (no sockets).

Usage: PYTHONPATH=. python bench/history_cost.py [RECEIVERS] [MESSAGE_BYTES]

Broadcasts a message to RECEIVERS connections whose sinks drop the frames, with history
off and with ``history=100``, and prints the best of several repetitions of each (the
best is the least disturbed by other work on a shared machine): the time of the
broadcast itself, without the socket writes that dominate a real fan-out (see
``bench/run.py``'s ``partydeco-history`` server for those).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from partydeco import App, ConnectContext, Request, Room
from partydeco.server.runtime import Runtime

BROADCASTS = 20_000
REPEAT = 9


class _Drop:
    """A sink that accepts every frame and sends nothing."""

    accepted = True
    closing = False
    close_frame = None

    def put(self, frame: str | bytes, event: dict[str, Any] | None = None) -> None:
        """Drop *frame*."""


async def room_with(history: int, receivers: int) -> tuple[Room, Runtime]:
    """A started room of a party with *history*, with *receivers* dropping connections."""
    app = App(storage="memory://", history=history, history_ttl=None)
    app.party().on_message(lambda message, sender: None)
    runtime = Runtime(app)
    room = runtime.backplane.room("main", "bench")
    assert isinstance(room, Room)
    await room.start()
    for i in range(receivers):
        request = Request("GET", "/parties/main/bench", is_websocket=True)
        await room.attach(room.new_connection(request, _Drop(), f"c{i}"), ConnectContext(request))
    return room, runtime


def run(room: Room, message: str) -> float:
    """Microseconds per broadcast over :data:`BROADCASTS` broadcasts."""
    start = time.perf_counter()
    for _ in range(BROADCASTS):
        room.broadcast(message, without=("sender",))
    return (time.perf_counter() - start) / BROADCASTS * 1e6


async def main(receivers: int, size: int) -> None:
    """Print the best time with history off and on, runs interleaved."""
    off, off_runtime = await room_with(0, receivers)
    on, on_runtime = await room_with(100, receivers)
    message = "x" * size
    times: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(REPEAT):
        times["off"].append(run(off, message))
        times["on"].append(run(on, message))
    best_off, best_on = min(times["off"]), min(times["on"])
    print(f"{receivers} receivers, {size}-byte messages, best of {REPEAT} x {BROADCASTS}:")
    print(f"  history off: {best_off:6.2f} us per broadcast")
    print(f"  history=100: {best_on:6.2f} us per broadcast (+{best_on - best_off:.2f} us)")
    for runtime in (off_runtime, on_runtime):
        await runtime.storage.close()


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    message_bytes = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    asyncio.run(main(count, message_bytes))
