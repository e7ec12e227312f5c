"""The sending half of one WebSocket: a bounded queue drained by one writer.

Handlers never write to a socket. ``send`` and ``broadcast`` append a frame to
the receiver's outbox and return at once; one writer task per connection
drains it into the ASGI ``send`` callable, so a slow peer only ever delays
itself. A peer whose outbox overflows is closed with 1013.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from .closecodes import TRY_AGAIN_LATER

__all__ = ["Outbox"]

logger = logging.getLogger("partydeco")

Send = Callable[[dict[str, Any]], Awaitable[None]]



class Outbox:
    """A bounded queue of outgoing frames with its writer task.

    Args:
        send: the ASGI ``send`` callable of the WebSocket.
        max_messages: frames that may wait before the peer counts as too slow.
        max_bytes: the same bound, in bytes (characters for text frames).
        close_timeout: seconds to wait for the peer after our close frame before
            ``on_timeout`` is called.
        on_timeout: called when the peer did not finish closing in time.
    """

    __slots__ = (
        "_close",
        "_done",
        "_pending",
        "_queue",
        "_send",
        "_wakeup",
        "_writer",
        "accepted",
        "close_timeout",
        "closing",
        "max_bytes",
        "max_messages",
        "on_timeout",
    )

    def __init__(
        self,
        send: Send,
        *,
        max_messages: int,
        max_bytes: int,
        close_timeout: float,
        on_timeout: Callable[[], None] | None = None,
    ) -> None:
        self._send = send
        self._queue: deque[str | bytes] = deque()
        self._pending = 0
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._close: tuple[int, str] | None = None
        self._done = False
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.close_timeout = close_timeout
        self.on_timeout = on_timeout
        self.accepted = False
        #: True once a close was requested: nothing more is queued.
        self.closing = False

    async def accept(
        self, headers: Iterable[tuple[str, str]] = (), subprotocol: str | None = None
    ) -> None:
        """Complete the WebSocket handshake and start the writer."""
        message: dict[str, Any] = {"type": "websocket.accept", "subprotocol": subprotocol}
        if headers:
            message["headers"] = [(k.lower().encode(), v.encode()) for k, v in headers]
        await self._send(message)
        self.accepted = True
        self._writer = asyncio.get_running_loop().create_task(self._run())

    def put(self, frame: str | bytes) -> None:
        """Queue one frame; close the peer with 1013 if it is too far behind."""
        if self.closing:
            return
        queue = self._queue
        queue.append(frame)
        self._pending += len(frame)
        if len(queue) > self.max_messages or self._pending > self.max_bytes:
            self.close(TRY_AGAIN_LATER, "send queue full", discard=True)
            return
        if len(queue) == 1:
            self._wakeup.set()

    def close(self, code: int = 1000, reason: str = "", *, discard: bool = False) -> None:
        """Close after the queued frames are sent (or at once with *discard*)."""
        if self.closing:
            return
        self.closing = True
        if discard:
            self._queue.clear()
            self._pending = 0
        self._close = (code, reason)
        self._wakeup.set()

    @property
    def close_frame(self) -> tuple[int, str] | None:
        """The code and reason this side closed with, if it did."""
        return self._close

    @property
    def pending(self) -> int:
        """Frames waiting to be sent."""
        return len(self._queue)

    async def _run(self) -> None:
        send = self._send
        queue = self._queue
        wakeup = self._wakeup
        try:
            while True:
                while queue:
                    frame = queue.popleft()
                    self._pending -= len(frame)
                    if type(frame) is str:
                        await send({"type": "websocket.send", "text": frame})
                    else:
                        await send({"type": "websocket.send", "bytes": frame})
                if self._close is not None:
                    break
                wakeup.clear()
                await wakeup.wait()
            code, reason = self._close
            await send({"type": "websocket.close", "code": code, "reason": reason})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the peer is gone; the reader sees the disconnect
            logger.debug("websocket send failed: %r", exc)
            self.closing = True
            return
        if self.on_timeout is not None:
            await asyncio.sleep(self.close_timeout)
            if not self._done:
                self.on_timeout()

    async def close_now(self, code: int, reason: str) -> None:
        """Send a close frame directly, bypassing the queue (used while shutting down)."""
        self.closing = True
        self._queue.clear()
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
        self._queue.clear()
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
