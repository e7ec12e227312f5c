"""The bytes queued for slow receivers: counted in UTF-8 bytes, bounded per socket and per
process (the receivers with the most queued are closed first), and a receiver that stops
reading is let go ``close_timeout`` after its close, even if the close cannot be written.

A server-process test of the same budget is in ``test_memory_budgets.py``."""

from __future__ import annotations

import asyncio
from typing import Any

from partydeco.outbox import Outbox, OutboxBudget, frame_size
from tests.support import eventually


class StalledSend:
    """An ASGI ``send`` whose ``websocket.send`` (and close) waits until released."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.released = asyncio.Event()

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] != "websocket.accept":
            await self.released.wait()
        self.sent.append(message)


async def stalled_outbox(budget: OutboxBudget, **options: Any) -> tuple[Outbox, StalledSend]:
    send = StalledSend()
    options = {"max_messages": 1000, "max_bytes": 1 << 20, "close_timeout": 5, **options}
    box = Outbox(send, budget=budget, **options)
    await box.accept()
    box.put("first")  # this write waits: the socket is stalled, what follows queues
    return box, send


async def test_the_receivers_with_the_most_queued_are_closed_first() -> None:
    budget = OutboxBudget(100_000)
    a, _ = await stalled_outbox(budget)
    b, _ = await stalled_outbox(budget)
    c, _ = await stalled_outbox(budget)
    a.put("a" * 30_000)
    b.put("b" * 50_000)
    c.put("c" * 10_000)
    assert budget.queued == 90_000 and budget.slow == {a, b, c}
    c.put("c" * 20_000)  # 110 000 in all: b, with the most, goes
    assert b.closing and b.close_frame == (1013, "server send queues full")
    assert not a.closing and not c.closing
    assert budget.queued == 60_000 and budget.slow == {a, c}
    a.put("a" * 45_000)  # 105 000: now a has the most
    assert a.closing and not c.closing
    assert budget.queued == 30_000
    for box in (a, b, c):
        box.finish()
    assert budget.queued == 0 and not budget.slow


async def test_the_budget_is_given_back_as_frames_are_written() -> None:
    budget = OutboxBudget(1 << 20)
    box, send = await stalled_outbox(budget)
    for i in range(10):
        box.put(f"{i}" * 1000)
    assert budget.queued == 10_000
    send.released.set()
    await eventually(lambda: len(send.sent) == 12)  # accept, first, ten frames
    assert budget.queued == 0 and not budget.slow and box.pending_bytes == 0
    box.finish()


async def test_queued_bytes_count_utf8_bytes() -> None:
    assert frame_size("é" * 600) == 1200
    assert frame_size("x" * 600) == 600
    assert frame_size(b"\xff" * 7) == 7
    box, _ = await stalled_outbox(OutboxBudget(1 << 20), max_bytes=1000)
    box.put("é" * 600)  # 600 characters, 1200 bytes: over the per-socket cap
    assert box.close_frame == (1013, "send queue full")
    box.finish()


async def test_a_receiver_that_never_reads_is_let_go_after_close_timeout() -> None:
    """The close frame of a stalled receiver cannot be written; the timer runs from the
    close itself, so the socket (and its memory) is released all the same."""
    timed_out = asyncio.Event()
    box, _ = await stalled_outbox(
        OutboxBudget(1 << 20), close_timeout=0.2, max_messages=3
    )
    box.on_timeout = timed_out.set
    for i in range(5):
        box.put(str(i))  # over max_messages: closed with 1013, its close frame stuck
    assert box.close_frame == (1013, "send queue full")
    await asyncio.wait_for(timed_out.wait(), 2)
    box.finish()
