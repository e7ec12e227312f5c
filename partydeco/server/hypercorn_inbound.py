"""What a client's frames may cost on Hypercorn, before they reach the app.

Hypercorn (through wsproto) reads frames, answers pings and assembles messages
below the ASGI app, where partydeco's per-message checks cannot see. The
``inbound-limits`` fix (see :mod:`partydeco.server.hypercorn`) replaces
``WSStream._handle_events`` with :func:`handle_events`, which keeps Hypercorn's
behaviour and adds, for each socket's :class:`StreamLimits`:

- message size in bytes: text counts its UTF-8 bytes (Hypercorn counts
  characters, so 4 MiB of emoji passed a 1 MiB limit), checked as each piece of
  a message arrives, before it is kept; over it, close 1009. The pieces are kept
  as they came and joined once the message is complete (Hypercorn writes them to
  a growing buffer, a quarter larger than the message); a message that arrives
  in one piece is handed on as it is.
- unfinished messages: what all sockets hold of messages still arriving (a large
  frame, or fragments) is bounded process-wide (``max_unfinished_bytes``); the
  socket whose piece would go past it is closed with 1013. A message must be finished within
  ``message_timeout`` seconds of its first piece, or the socket is closed with 1008.
- control frames: each ping and pong takes a token from the connection's message
  rate (the app installs it as :attr:`StreamLimits.rate`); over it, close 1008. Of
  the pings read at once, only the last is answered (RFC 6455 5.5.3 allows it), so
  a ping flood costs no write per ping.
- a close frame: when wsproto cannot parse what arrived (a bomb inflating past
  ``max_message_size``, invalid UTF-8, a protocol error) the client gets a close
  frame with wsproto's code, 1009 for a bomb, where Hypercorn dropped the connection
  without one (the client saw 1006).

After partydeco closes a socket for one of these, the client has ``close_timeout``
seconds to answer the close, and :data:`AFTER_CLOSE` bytes to send meanwhile (the
rest of a message it was sending, then its close): parsing frames is the expensive
part of a flood, so a client that keeps sending past that is dropped at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypercorn.protocol.events import StreamClosed
from wsproto.connection import ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from ..closecodes import MESSAGE_TOO_BIG, POLICY_VIOLATION, TRY_AGAIN_LATER
from ..security.limits import ByteBudget, MessageRate

__all__ = ["AFTER_CLOSE", "DEFAULT_BUDGET", "StreamLimits", "after_close", "handle_events"]

#: Bytes a client may still send once partydeco closed its socket here.
AFTER_CLOSE = 64 * 1024

#: Close reasons for the codes wsproto fails a connection with.
_PARSE_REASONS = {1002: "protocol error", 1007: "invalid frame payload", 1009: "message too big"}


#: The budget of sockets no partydeco app configured (Quart's own WebSocket routes);
#: ``apply`` sets its limit. A partydeco app gives its sockets its runtime's budget.
DEFAULT_BUDGET = ByteBudget(32 << 20)


class StreamLimits:
    """One socket's inbound limits and state (see the module).

    The app configures them (:meth:`configure`) once it accepted the socket, before
    any message can arrive; until then Hypercorn's own message size applies.

    Attributes:
        rate: the connection's message rate, shared with the app's checks; pings and
            pongs take from it. ``None`` for no limit.
        max_size: the largest message, in bytes.
        message_timeout: seconds to finish a message once its first piece arrived.
        close_timeout: seconds the client has to answer a close partydeco sent here.
        budget: the bytes of unfinished messages this socket shares with the others.
        size: bytes of the message arriving now, if it is unfinished.
        failed: whether partydeco closed the socket: its frames are dropped.
    """

    __slots__ = (
        "after",
        "budget",
        "close_timeout",
        "failed",
        "max_size",
        "message_timeout",
        "parts",
        "rate",
        "size",
        "stream",
        "task",
        "timer",
    )

    def __init__(self, stream: Any, max_size: int) -> None:
        self.stream = stream
        self.max_size = max_size
        self.rate: MessageRate | None = None
        self.message_timeout = 30.0
        self.close_timeout = 5.0
        self.budget = DEFAULT_BUDGET
        self.size = 0
        self.parts: list[Any] = []  # the pieces of the message arriving now
        self.failed = False
        self.after = 0  # bytes received since failing
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None

    def configure(
        self,
        *,
        rate: MessageRate | None,
        max_size: int,
        message_timeout: float,
        close_timeout: float,
        budget: ByteBudget,
    ) -> None:
        """Take the app's limits for this socket."""
        self.rate = rate
        self.max_size = max_size
        self.message_timeout = message_timeout
        self.close_timeout = close_timeout
        self.budget = budget

    def arrived(self, size: int, finished: bool) -> tuple[int, str] | None:
        """Account for *size* bytes of a message; the close to send if they are too many."""
        total = self.size + size
        if total > self.max_size:
            return MESSAGE_TOO_BIG, "message too big"
        if finished:
            if self.size:
                self._settle()
            return None
        budget = self.budget
        if budget.held + size > budget.limit:
            return TRY_AGAIN_LATER, "too many unfinished messages"
        budget.held += size
        if not self.size:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.message_timeout, self._expired)
        self.size = total
        return None

    def control(self) -> bool:
        """Take a token for a ping or a pong; ``False`` when over the rate."""
        rate = self.rate
        return rate is None or rate.allow()

    def _settle(self) -> None:
        self.budget.held -= self.size
        self.size = 0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self) -> None:
        self.timer = None
        if not self.failed:
            self.task = asyncio.get_running_loop().create_task(
                fail(self.stream, self, POLICY_VIOLATION, "message not finished in time")
            )

    def release(self) -> None:
        """Give back what the socket holds (it failed or closed)."""
        self.parts = []
        if self.size:
            self._settle()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


async def handle_events(self: Any) -> None:
    """``WSStream._handle_events``: deliver messages, answer pings and closes, within
    the socket's :class:`StreamLimits`."""
    limits: StreamLimits = self._partydeco_limits
    connection = self.connection
    pong: Ping | None = None
    for event in connection.events():
        kind = type(event)
        if kind is TextMessage or kind is BytesMessage:
            if limits.failed:
                continue
            data = event.data
            finished = event.message_finished
            size = len(data) if kind is BytesMessage or data.isascii() else len(data.encode())
            if finished and not limits.size and size <= limits.max_size:
                # a whole message in one piece, the common case: no buffer at all
                if kind is TextMessage:
                    await self.app_put({"type": "websocket.receive", "text": data, "bytes": None})
                else:
                    await self.app_put({"type": "websocket.receive", "text": None, "bytes": data})
                continue
            failure = limits.arrived(size, finished)
            if failure is not None:
                await fail(self, limits, *failure)
                continue
            parts = limits.parts
            parts.append(data)
            if finished:
                limits.parts = []
                message: dict[str, Any] = {"type": "websocket.receive", "text": None, "bytes": None}
                if kind is TextMessage:
                    message["text"] = "".join(parts)
                else:
                    message["bytes"] = b"".join(parts)
                del parts
                await self.app_put(message)
        elif kind is Ping or kind is Pong:
            if limits.failed:
                continue
            if not limits.control():
                await fail(self, limits, POLICY_VIOLATION, "message rate exceeded")
                continue
            if kind is Ping:
                pong = event
        elif kind is CloseConnection:
            pong = None
            state = connection.state
            if state is ConnectionState.REMOTE_CLOSING:
                await self._send_wsproto_event(event.response())
            elif state is ConnectionState.OPEN and not limits.failed:
                # wsproto could not parse what arrived and will parse nothing more
                code = int(event.code)
                reason = _PARSE_REASONS.get(code, "protocol error")
                await fail(self, limits, code, reason, wait=False)
                return
            limits.release()
            await self.send(StreamClosed(stream_id=self.stream_id))
    if pong is not None and not limits.failed:
        await self._send_wsproto_event(pong.response())


async def fail(
    stream: Any, limits: StreamLimits, code: int, reason: str, wait: bool = True
) -> None:
    """Close *stream* with *code* and *reason*: the app's ``on_close`` sees them.

    With *wait*, the client has ``close_timeout`` seconds to answer the close before
    the connection is dropped (its frames are read and dropped meanwhile); without,
    it is dropped at once.
    """
    if limits.failed:
        return
    limits.failed = True
    limits.release()
    connection = stream.connection
    if getattr(connection, "peer_close", ()) is None:  # the close-codes fix reports it
        connection.peer_close = (code, reason)
    await stream._send_wsproto_event(CloseConnection(code=code, reason=reason))
    if not wait:
        await stream.send(StreamClosed(stream_id=stream.stream_id))
        return
    loop = asyncio.get_running_loop()
    limits.timer = loop.call_later(limits.close_timeout, _drop, stream, limits)


async def after_close(stream: Any, limits: StreamLimits, data: bytes) -> bool:
    """Count *data* arriving on a failed stream; drop the connection (and return
    ``True``) once it is more than :data:`AFTER_CLOSE`."""
    limits.after += len(data)
    if limits.after <= AFTER_CLOSE:
        return False
    if not stream.closed:
        limits.release()
        await stream.send(StreamClosed(stream_id=stream.stream_id))
    return True


def _drop(stream: Any, limits: StreamLimits) -> None:
    limits.timer = None
    if not stream.closed:
        limits.task = asyncio.get_running_loop().create_task(
            stream.send(StreamClosed(stream_id=stream.stream_id))
        )
