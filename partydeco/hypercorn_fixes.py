"""Two fixes to Hypercorn's WebSocket handling (Hypercorn 0.17-0.18, wsproto 1.x).

1. Inflation is bounded. Hypercorn always negotiates permessage-deflate, and
   wsproto inflates each frame without a size limit: a 100 KB frame of
   compressed zeros becomes 100 MB in memory before Hypercorn's message-size
   check runs. :class:`BoundedPerMessageDeflate` stops inflating at the app's
   ``max_message_size`` and fails the connection instead.
2. The client's close code reaches the app. Hypercorn reports every close the
   client starts as 1006; with this fix ``websocket.disconnect`` carries the
   code and reason from the client's close frame, so ``on_close`` sees them.
3. Pings stop with their socket. Hypercorn's ping loop sleeps a whole ping
   interval before it notices that its socket closed, and keeps the
   connection's task alive meanwhile, so a graceful shutdown waited its full
   timeout after any WebSocket had been open.
4. The read timeout costs one timer per connection, not one per read.
   Hypercorn wraps every socket read in ``asyncio.wait_for`` when
   ``read_timeout`` is set (partydeco sets it: with pings, it is what drops
   dead peers), which makes a task and a timer for each read, about a sixth of
   the server's time in an echo benchmark. :func:`_read_data` keeps the same
   rule (a read that waits longer than ``read_timeout`` ends the connection)
   with one timer per connection that re-arms itself.

:func:`install` applies them, once per process.
"""

from __future__ import annotations

import asyncio
import zlib
from ssl import SSLError
from typing import Any, ClassVar

from wsproto.connection import Connection
from wsproto.events import CloseConnection, Event
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason

__all__ = ["BoundedPerMessageDeflate", "RecordingConnection", "install"]


class BoundedPerMessageDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate, refusing messages that inflate past a limit."""

    #: the largest inflated message, in bytes (set by :func:`install`).
    max_message_size: ClassVar[int] = 1 << 20

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inflated = 0

    def frame_inbound_payload_data(self, proto: Any, data: bytes) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        assert self._decompressor is not None
        room = self.max_message_size - self._inflated
        try:
            out = self._decompressor.decompress(bytes(data), room + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._inflated > self.max_message_size:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    def frame_inbound_complete(self, proto: Any, fin: bool) -> bytes | CloseReason | None:
        result = super().frame_inbound_complete(proto, fin)
        if fin:
            self._inflated = 0
        return result


class RecordingConnection(Connection):
    """A wsproto connection that remembers the close frame its peer sent."""

    peer_close: tuple[int, str] | None = None

    def events(self) -> Any:
        for event in super().events():
            if isinstance(event, CloseConnection) and self.peer_close is None:
                self.peer_close = (int(event.code), event.reason or "")
            yield event


def _forward_close_code(handle: Any) -> Any:
    """Wrap ``WSStream.handle`` so the disconnect message carries the peer's close code."""
    from hypercorn.protocol.events import StreamClosed

    async def patched(self: Any, event: Event) -> None:
        if isinstance(event, StreamClosed):
            _stream_closed(self)
        connection = getattr(self, "connection", None)
        peer_close = getattr(connection, "peer_close", None)
        if isinstance(event, StreamClosed) and peer_close is not None and self.app_put:
            put = self.app_put

            async def app_put(message: dict[str, Any]) -> None:
                if message.get("type") == "websocket.disconnect":
                    message = {**message, "code": peer_close[0], "reason": peer_close[1]}
                await put(message)

            self.app_put = app_put
        await handle(self, event)

    patched.partydeco_patched = True  # type: ignore[attr-defined]
    return patched


def _stream_closed(stream: Any) -> None:
    stream._partydeco_closed = True
    _wake(getattr(stream, "_partydeco_wake", None))


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


async def _send_pings(self: Any) -> None:
    """Ping every interval until the stream closes, waking as soon as it does.

    The first ping goes one interval after the handshake (Hypercorn's goes at
    once: one more write on every connect). Between pings it waits on one
    future and one timer (no task), since every idle connection holds this
    loop for as long as it is open.
    """
    from wsproto.events import Ping

    loop = asyncio.get_running_loop()
    while True:  # wait first: a socket that just opened needs no ping yet
        waiter = self._partydeco_wake = loop.create_future()
        timer = loop.call_later(self.config.websocket_ping_interval, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._partydeco_wake = None
        if self.closed or getattr(self, "_partydeco_closed", False):
            return
        await self._send_wsproto_event(Ping())


class _ReadDeadline:
    """Cancels a connection's reader when one read has waited ``timeout`` seconds."""

    __slots__ = ("fired", "handle", "loop", "reading_since", "task", "timeout")

    def __init__(self, task: asyncio.Task[Any], timeout: float) -> None:
        self.loop = task.get_loop()
        self.task = task
        self.timeout = timeout
        self.reading_since: float | None = None  # loop time the current read started
        self.fired = False
        self.handle = self.loop.call_later(timeout, self.check)

    def check(self) -> None:
        since = self.reading_since
        waited = 0.0 if since is None else self.loop.time() - since
        if since is not None and waited >= self.timeout:
            self.fired = True
            self.task.cancel()
        else:
            self.handle = self.loop.call_later(self.timeout - waited, self.check)


async def _read_data(self: Any) -> None:
    """Hypercorn's ``TCPServer._read_data`` with the read timeout kept by one timer."""
    from hypercorn.asyncio.tcp_server import MAX_RECV
    from hypercorn.events import Closed, RawData

    timeout = self.config.read_timeout
    task = asyncio.current_task()
    if timeout is None or task is None:
        await _hypercorn_read_data(self)
        return
    deadline = _ReadDeadline(task, timeout)
    reader = self.reader
    loop = deadline.loop
    try:
        while not reader.at_eof():
            deadline.reading_since = loop.time()
            try:
                data = await reader.read(MAX_RECV)
            except asyncio.CancelledError:
                if not deadline.fired or task.uncancel() > 0:
                    raise
                break  # timed out, as wait_for's TimeoutError
            except (ConnectionError, OSError, SSLError):
                break
            finally:
                deadline.reading_since = None
            await self.protocol.handle(RawData(data))
    finally:
        deadline.handle.cancel()
    await self.protocol.handle(Closed())


_hypercorn_read_data: Any = None


def install(max_message_size: int) -> None:
    """Apply the fixes to Hypercorn, with *max_message_size* as the inflation bound.

    The setting is process-wide; with several apps in one process the largest
    limit applies to all of them.
    """
    from hypercorn.protocol import ws_stream

    if not getattr(ws_stream.WSStream.handle, "partydeco_patched", False):
        ws_stream.WSStream.handle = _forward_close_code(ws_stream.WSStream.handle)  # type: ignore[method-assign]
        ws_stream.Connection = RecordingConnection  # type: ignore[attr-defined]
        ws_stream.WSStream._send_pings = _send_pings  # type: ignore[method-assign]

    from hypercorn.asyncio import tcp_server

    global _hypercorn_read_data
    if tcp_server.TCPServer._read_data is not _read_data:
        _hypercorn_read_data = tcp_server.TCPServer._read_data
        tcp_server.TCPServer._read_data = _read_data  # type: ignore[method-assign]

    if ws_stream.PerMessageDeflate is BoundedPerMessageDeflate:  # type: ignore[attr-defined]
        size = max(BoundedPerMessageDeflate.max_message_size, max_message_size)
    else:
        size = max_message_size
    BoundedPerMessageDeflate.max_message_size = size
    ws_stream.PerMessageDeflate = BoundedPerMessageDeflate  # type: ignore[attr-defined]
