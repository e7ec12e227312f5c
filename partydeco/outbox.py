"""The sending half of one WebSocket: frames written at once, or queued behind a slow peer.

``send`` and ``broadcast`` never wait. When nothing is queued for a peer, its
frame is written straight away: the ASGI ``send`` coroutine is stepped in place
and, as servers write to an unblocked socket without suspending, it finishes
there, so a broadcast to N peers costs N socket writes and no trips through the
event loop. If the write has to wait (the peer's socket buffer is full), a
writer task takes over the suspended write and then drains the frames that
queued up behind it, so a slow peer only ever delays itself. A peer whose queue
overflows is closed with 1013.

Queued bytes are also counted process-wide, in an :class:`OutboxBudget`: when the
sum over all sockets passes ``max_pending_bytes_per_process``, the receivers with
the most bytes queued are closed with 1013 (their queues dropped) until it is under
again, so many slow receivers cannot add up to unbounded memory either. Frames
written at once are never queued and never counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from .closecodes import TRY_AGAIN_LATER
from .types import Send

if TYPE_CHECKING:
    from .backplane.base import Sink
    from .observability.metrics import PartyMeter

__all__ = ["Outbox", "OutboxBudget", "frame_size", "put_all", "send_event"]

logger = logging.getLogger("partydeco")



def frame_size(frame: str | bytes) -> int:
    """The size of *frame* on the wire, in bytes (UTF-8 for text)."""
    if type(frame) is bytes or frame.isascii():
        return len(frame)
    return len(frame.encode())  # type: ignore[union-attr]


class OutboxBudget:
    """The bytes queued for slow receivers in one process, and their limit.

    Attributes:
        limit: the most bytes all outboxes together may queue
            (``max_pending_bytes_per_process``).
        queued: the bytes queued now.
        slow: the outboxes with something queued.
    """

    __slots__ = ("limit", "queued", "slow")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.queued = 0
        self.slow: set[Outbox] = set()

    def overflow(self) -> None:
        """Close the receivers with the most bytes queued until the total is under the limit."""
        while self.queued > self.limit and self.slow:
            slowest = max(self.slow, key=lambda outbox: outbox.pending_bytes)
            slowest.close(TRY_AGAIN_LATER, "server send queues full", discard=True)


def send_event(frame: str | bytes) -> dict[str, Any]:
    """The ASGI ``websocket.send`` message for *frame* (servers only read it, so a
    broadcast builds it once for all its receivers)."""
    if type(frame) is str:
        return {"type": "websocket.send", "text": frame}
    return {"type": "websocket.send", "bytes": frame}


def put_all(sinks: list[Sink], frame: str | bytes, event: dict[str, Any]) -> None:
    """Put one broadcast's *frame* (and its prebuilt *event*) into each of *sinks*."""
    for sink in sinks:
        sink.put(frame, event)


async def _resume(coro: Coroutine[Any, Any, Any], blocked: Any) -> None:
    """Run *coro* to its end in this task; it was started elsewhere and is suspended
    on *blocked* (a future, or ``None`` for a bare yield), as an asyncio Task runs it."""
    while True:
        error: BaseException | None = None
        try:
            if blocked is None:
                await asyncio.sleep(0)
            else:
                # What a Task does with a future its coroutine yields: clear the flag
                # the yield set (awaiting it again would fail), then wait for it.
                blocked._asyncio_future_blocking = False
                await blocked
        except BaseException as exc:  # handed to the coroutine, which decides
            error = exc
        try:
            if error is not None and (blocked is None or not blocked.done()):
                blocked = coro.throw(error)
            else:  # a finished future: the coroutine reads its result (or exception) itself
                blocked = coro.send(None)
        except StopIteration:
            return


async def _wait_for(awaitable: Awaitable[None]) -> None:
    await awaitable


class Outbox:
    """The outgoing frames of one WebSocket: written at once, queued while a write waits.

    Args:
        send: the ASGI ``send`` callable of the WebSocket.
        max_messages: frames that may wait before the peer counts as too slow.
        max_bytes: the same bound, in bytes (UTF-8 bytes for text frames).
        close_timeout: seconds the peer has, once this side asked to close, to take
            the frames still queued and finish the closing handshake; then
            ``on_timeout`` is called (a peer that stopped reading would otherwise
            keep its socket, and what is queued for it, forever).
        on_timeout: called when the peer did not finish closing in time.
        meter: the party's metrics, which count the frames sent, if any.
        budget: the process's budget of queued bytes, if any.
    """

    __slots__ = (
        "_close",
        "_done",
        "_pending",
        "_queue",
        "_send",
        "_timer",
        "_writer",
        "accepted",
        "budget",
        "close_timeout",
        "closing",
        "max_bytes",
        "max_messages",
        "meter",
        "on_timeout",
    )

    def __init__(
        self,
        send: Send,
        max_messages: int,
        max_bytes: int,
        close_timeout: float,
        on_timeout: Callable[[], None] | None = None,
        meter: PartyMeter | None = None,
        budget: OutboxBudget | None = None,
    ) -> None:
        self._send = send
        self.budget = budget
        # frames waiting, each with its size in bytes
        self._queue: deque[tuple[str | bytes, int]] = deque()
        self._pending = 0
        # The task finishing a write that had to wait, then draining the queue; None
        # when the socket is idle, which is when frames are written at once.
        self._writer: asyncio.Task[None] | None = None
        self._close: tuple[int, str] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._done = False
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.close_timeout = close_timeout
        self.on_timeout = on_timeout
        self.meter = meter
        self.accepted = False
        #: True once a close was requested: nothing more is queued.
        self.closing = False

    async def accept(
        self, headers: Iterable[tuple[str, str]] = (), subprotocol: str | None = None
    ) -> None:
        """Complete the WebSocket handshake; frames queued before are sent now."""
        message: dict[str, Any] = {"type": "websocket.accept", "subprotocol": subprotocol}
        if headers:
            message["headers"] = [(k.lower().encode(), v.encode()) for k, v in headers]
        await self._send(message)
        self.accepted = True
        if self._close is not None:
            self._arm()
        if self._queue or self._close is not None:
            self._start_writer()

    def put(self, frame: str | bytes, event: dict[str, Any] | None = None) -> None:
        """Send one frame, or queue it; close the peer with 1013 if it is too far behind.

        *event* is ``send_event(frame)``, if the caller has it already.
        """
        if self.closing:
            return
        meter = self.meter
        if meter is not None:
            meter.sent += 1
            meter.sent_bytes += len(frame)
        if self._writer is None and self.accepted:
            self._write_now(event or send_event(frame))
            return
        queue = self._queue
        size = frame_size(frame)
        queue.append((frame, size))
        self._pending += size
        budget = self.budget
        if budget is not None:
            budget.slow.add(self)
            budget.queued += size
            if budget.queued > budget.limit:
                budget.overflow()  # may close this outbox
                if self.closing:
                    return
        if len(queue) > self.max_messages or self._pending > self.max_bytes:
            self.close(TRY_AGAIN_LATER, "send queue full", discard=True)

    def _drop_queue(self) -> None:
        """Forget every queued frame (and give their bytes back to the budget)."""
        self._queue.clear()
        budget = self.budget
        if budget is not None:
            budget.queued -= self._pending
            budget.slow.discard(self)
        self._pending = 0

    def _write_now(self, event: dict[str, Any]) -> None:
        coro = self._send(event)
        if not hasattr(coro, "send"):  # a server whose send returns a future, not a coroutine
            self._start_writer(_wait_for(coro), None)
            return
        try:
            blocked = coro.send(None)
        except StopIteration:
            return
        except Exception as exc:
            self._failed(exc)
            return
        self._start_writer(coro, blocked)

    def _start_writer(self, coro: Any = None, blocked: Any = None) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._run(coro, blocked))

    def close(self, code: int = 1000, reason: str = "", *, discard: bool = False) -> None:
        """Close after the queued frames are sent (or at once with *discard*)."""
        if self.closing:
            return
        self.closing = True
        if discard:
            self._drop_queue()
        self._close = (code, reason)
        if self.accepted:
            self._arm()
            if self._writer is None:
                self._start_writer()

    def _arm(self) -> None:
        if self.on_timeout is not None and self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.close_timeout, self._timed_out)

    def _timed_out(self) -> None:
        self._timer = None
        if not self._done and self.on_timeout is not None:
            self.on_timeout()

    @property
    def close_frame(self) -> tuple[int, str] | None:
        """The code and reason this side closed with, if it did."""
        return self._close

    @property
    def pending(self) -> int:
        """Frames waiting to be sent."""
        return len(self._queue)

    @property
    def pending_bytes(self) -> int:
        """Bytes waiting to be sent."""
        return self._pending

    async def _run(self, coro: Coroutine[Any, Any, Any] | None, blocked: Any) -> None:
        send = self._send
        queue = self._queue
        try:
            if coro is not None:
                await _resume(coro, blocked)
            while queue:
                frame, size = queue.popleft()
                self._pending -= size
                budget = self.budget
                if budget is not None:
                    budget.queued -= size
                    if not queue:
                        budget.slow.discard(self)
                await send(send_event(frame))
            if self._close is None:
                self._writer = None  # idle again: the next frame is written at once
                return
            code, reason = self._close
            await send({"type": "websocket.close", "code": code, "reason": reason})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the peer is gone; the reader sees the disconnect
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        logger.debug("websocket send failed: %r", exc)
        self.closing = True
        self._drop_queue()

    async def close_now(self, code: int, reason: str) -> None:
        """Send a close frame directly, bypassing the queue (used while shutting down)."""
        self.closing = True
        self._drop_queue()
        self._close = (code, reason)
        if self._writer is not None:
            self._writer.cancel()
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        except Exception as exc:
            logger.debug("websocket close failed: %r", exc)

    def finish(self) -> None:
        """Stop the writer; the socket is gone."""
        self._done = True
        self.closing = True
        self.on_timeout = None  # its owner holds this outbox: no cycle left for the GC
        if self._queue:  # (an empty queue holds no bytes of the budget)
            self._drop_queue()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
