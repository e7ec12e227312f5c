"""What metrics add to the hot path, in-process: ``python bench/metrics_cost.py``.

A room of N connections whose outboxes write to an ASGI ``send`` that completes at
once (no network, no server): the time of one ``room.broadcast()`` to all of them,
and of one ``Outbox.put`` with one receiver, with metrics off and on, alternating
runs and keeping the best of each. Much less noisy than the end-to-end benchmark
on a shared machine, and it isolates exactly what partydeco adds per frame.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from partydeco import App
from partydeco.outbox import Outbox
from partydeco.request import Request
from partydeco.server.runtime import Runtime


async def _send(message: Any) -> None:
    return None


async def _room_of(metrics: bool, receivers: int) -> Any:
    app = App(metrics=metrics, storage="memory://")
    app.party().on_message(lambda message, sender: None)
    runtime = Runtime(app)
    room = runtime.backplane.room("main", "bench")
    meter = runtime.dispatch["main"].meter
    for i in range(receivers):
        outbox = Outbox(_send, max_messages=1024, max_bytes=1 << 20, close_timeout=5, meter=meter)
        await room.connect(Request("GET", "/parties/main/bench", query_string=f"_pk={i}".encode()),
                           outbox)  # fmt: skip
    return room


def _best(room: Any, calls: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            room.broadcast("a frame of some length")
        best = min(best, (time.perf_counter() - started) / calls)
    return best


async def main(receivers: int, calls: int, repeats: int) -> None:
    """Print the time per broadcast with metrics off and on, and the ratio."""
    for n in (1, receivers):
        off, on = await _room_of(False, n), await _room_of(True, n)
        times = {"off": float("inf"), "on": float("inf")}
        for _ in range(5):  # alternate, so drifts of the machine hit both
            times["off"] = min(times["off"], _best(off, calls, repeats))
            times["on"] = min(times["on"], _best(on, calls, repeats))
        off_us, on_us = times["off"] * 1e6, times["on"] * 1e6
        print(
            f"broadcast to {n:4d}: off {off_us:8.2f} us, on {on_us:8.2f} us,"
            f" off/on = {off_us / on_us:.3f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", type=int, default=500)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.receivers, args.calls, args.repeats))
