"""A room's input and output gates: the Durable Object guarantees PartyKit code relies on.

**Input gate.** While a storage call of the room is in flight, the room delivers no
new event (a connect, a message, a close, an HTTP request, an alarm) to its
handlers: events wait, in order. When the call completes, the handler that made it
runs on first, up to its next ``await``, before any waiting event is let in; waiting
events are let in one at a time, each running up to its first ``await`` before the
next. So ``n = await storage.get("n"); await storage.put("n", n + 1)`` never loses an
update, whatever other events arrive meanwhile. Anything else a handler awaits (an
HTTP call, ``asyncio.sleep``) leaves the gate open, as on Durable Objects; a
transaction keeps it closed from its start to its commit.

**Output gate.** While a storage write of the room is in flight, frames the room
sends (``send``, ``broadcast``, ``close``) are held, in order, and go out once every
write in flight is durable: a client never sees a message that depends on data the
server could still lose.

A room whose handlers never touch storage pays one integer test per event and per
send.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

__all__ = ["Gate"]


class Gate:
    """The input and output gates of one room (see the module).

    Attributes:
        blocked: how many reasons an arriving event has to wait (storage calls in
            flight, events already waiting, an event let in that has not run yet);
            ``0`` means it is delivered at once.
        writes: storage writes in flight; while it is not ``0`` frames are held.
    """

    __slots__ = ("_admitting", "_calls", "_held", "_scheduled", "_waiting", "blocked", "writes")

    def __init__(self) -> None:
        self.blocked = 0
        self.writes = 0
        self._calls = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._admitting = False
        self._scheduled = False
        self._held: deque[Callable[[], None]] = deque()

    def __repr__(self) -> str:
        return (
            f"<Gate storage calls={self._calls} waiting={len(self._waiting)} "
            f"writes={self.writes} held={len(self._held)}>"
        )

    # -- the input gate ----------------------------------------------------------------

    async def enter(self) -> None:
        """Wait until the gate lets an arriving event in (call only when :attr:`blocked`)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self.blocked += 1
        self._schedule()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter in self._waiting:  # still in line: leave it
                self._waiting.remove(waiter)
                self._count()
            raise

    def close(self) -> None:
        """A storage call starts: no event is let in until it ends."""
        self._calls += 1
        self.blocked += 1

    def reopen(self) -> None:
        """A storage call ended."""
        self._calls -= 1
        self.blocked -= 1
        if self._calls == 0 and self._waiting:
            self._schedule()

    def _count(self) -> None:
        self.blocked = self._calls + len(self._waiting) + self._admitting

    def _schedule(self) -> None:
        # Let the next event in from the loop, not from here: the handler whose storage
        # call just ended runs on first, up to its next await.
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._let_in)

    def _let_in(self) -> None:
        self._scheduled = False
        if self._calls or self._admitting:
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if waiter.done():  # cancelled while waiting
                continue
            waiter.set_result(None)
            # The event runs at the next loop step; until it did (up to its first
            # await), no other event is let in.
            self._admitting = True
            asyncio.get_running_loop().call_soon(self._admitted)
            break
        self._count()

    def _admitted(self) -> None:
        self._admitting = False
        self._count()
        if self._waiting and not self._calls:
            self._let_in()

    # -- the output gate ---------------------------------------------------------------

    def start_write(self) -> None:
        """A storage write starts: frames sent from now on are held until it is durable."""
        self.writes += 1

    def end_write(self) -> None:
        """A storage write ended; with none left in flight, held frames go out in order."""
        self.writes -= 1
        if self.writes == 0:
            held = self._held
            while held and self.writes == 0:
                held.popleft()()

    @property
    def held(self) -> int:
        """How many sends wait for the writes in flight."""
        return len(self._held)

    def hold(self, send: Callable[[], None]) -> None:
        """Run *send* once every write in flight is durable (call only when :attr:`writes`)."""
        self._held.append(send)
