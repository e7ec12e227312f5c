"""The timers Hypercorn keeps for each WebSocket connection, as partydeco runs them:
its pings (fix ``ping-stop``) and its read timeout (fix ``read-timer``); and the end
of a connection's reader, which frees the connection without the GC (fix
``connection-cycle``); see :mod:`partydeco.server.hypercorn`."""

from __future__ import annotations

import asyncio
from ssl import SSLError
from typing import Any

__all__ = ["read_data", "read_timer", "send_pings", "stream_closed"]


class _Original:
    """Hypercorn's own ``TCPServer._read_data``, kept for connections without a read
    timeout (set when the fix is applied), and whether ``connection-cycle`` is on."""

    original: Any = None
    forget_protocol = False


read_timer = _Original()


def stream_closed(stream: Any) -> None:
    stream._partydeco_closed = True
    _wake(getattr(stream, "_partydeco_wake", None))


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


async def send_pings(self: Any) -> None:
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


async def read_data(self: Any) -> None:
    """Hypercorn's ``TCPServer._read_data`` with the read timeout kept by one timer."""
    from hypercorn.asyncio.tcp_server import MAX_RECV
    from hypercorn.events import Closed, RawData

    timeout = self.config.read_timeout
    task = asyncio.current_task()
    if read_timer.forget_protocol and task is not None:
        task.add_done_callback(_ProtocolForgetter(self))
    if timeout is None or task is None:
        await read_timer.original(self)
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


class _ProtocolForgetter:
    """Drops a ``TCPServer``'s protocol once the connection's task is over.

    The server holds its ``ProtocolWrapper``, whose ``send`` is the server's own bound
    ``protocol_send``: a reference cycle holding the whole connection (h11 state,
    streams, task group, reader and writer, about 34 objects), which only the cyclic
    GC would free. ``TCPServer.run`` is the task: once it is done, nothing uses
    ``protocol`` again.
    """

    __slots__ = ("server",)

    def __init__(self, server: Any) -> None:
        self.server = server

    def __call__(self, task: asyncio.Task[Any]) -> None:
        getattr(self.server, "__dict__", {}).pop("protocol", None)
        self.server = None
