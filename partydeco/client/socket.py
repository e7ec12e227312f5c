"""``PartySocket``: an asyncio WebSocket client that behaves like the JavaScript partysocket.

It keeps one connection to a room open: it reconnects with backoff when the connection drops,
sends a stable id as ``_pk`` every time, recomputes ``query`` on every attempt (so a token can
be refreshed), buffers what is sent while offline, and stops for good when the server says no.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from partydeco.client.backoff import Backoff, CloseInfo, default_should_reconnect
from partydeco.client.buffer import Message, OfflineBuffer
from partydeco.client.errors import (
    ReconnectStoppedError,
    RetriesExhaustedError,
    SocketClosedError,
    stopped_error,
)
from partydeco.client.fetch import fetch_room
from partydeco.client.recovery import Recovery
from partydeco.client.sources import (
    CloseCallback,
    HeadersSource,
    OpenCallback,
    QuerySource,
    call_back,
    resolve,
)
from partydeco.client.url import RoomAddress

__all__ = ["HeadersSource", "Message", "PartySocket", "QuerySource"]

logger = logging.getLogger("partydeco.client")


class PartySocket:
    """A reconnecting WebSocket to one partydeco (or PartyKit) room.

    Example::

        async with PartySocket("localhost:1999", "lobby", query=get_token) as socket:
            await socket.send("hello")
            async for message in socket:
                print(message)

    The socket connects when first used (``send``, iteration, ``wait_open``, ``start`` or
    ``async with``). Messages arrive through ``async for`` or :meth:`recv`. When the server
    refuses the handshake or closes with a terminal code (see :func:`default_should_reconnect`),
    the socket stops and iteration raises a :class:`ReconnectStoppedError` subclass saying why;
    after :meth:`close` iteration simply ends.

    Args:
        host: ``host[:port]`` of the server; a scheme prefix is stripped.
        room: the room id (required unless ``base_path`` is given).
        party: the party name (``"main"``).
        prefix: the URL prefix (``"parties"``).
        path: an extra sub-path after the room, without a leading ``/``.
        base_path: replaces ``prefix/party/room`` entirely.
        protocol: ``"ws"``/``"wss"``; ``None`` chooses ``ws`` for localhost and private
            addresses, ``wss`` otherwise.
        id: the connection id sent as ``_pk``; a random UUID by default. It stays the same
            across reconnects, so the server sees the same ``connection.id``.
        query: query parameters, or a (sync or async) function returning them that is called
            before every connection attempt, e.g. to fetch a fresh token. If it raises, the
            attempt counts as failed and is retried with backoff.
        headers: extra handshake headers, or a function returning them (called per attempt).
            Browsers cannot send these; Python can (e.g. ``Authorization``).
        subprotocols: WebSocket subprotocols to offer.
        backoff: delays between attempts, see :class:`Backoff`.
        max_retries: give up after this many failed retries in a row (``None``: no limit).
        min_uptime: seconds a connection must stay open before the retry count resets.
        connect_timeout: seconds allowed for one attempt (TCP, TLS and handshake).
        max_buffered: how many messages ``send`` keeps while offline (flushed in order on the
            next open, before ``on_open`` runs).
        overflow: what ``send`` does when the buffer is full: ``"drop_oldest"`` discards the
            oldest buffered message, ``"error"`` raises :class:`BufferFullError`.
        should_reconnect: decides after each failed attempt or close whether to try again;
            defaults to :func:`default_should_reconnect`.
        max_size: the largest incoming message in bytes (larger ones close with 1009).
        max_inbox: received messages kept until read; when full, reading from the network
            pauses, so a slow consumer pushes back on the server instead of using memory.
        on_open: called (and awaited if async) after each successful open.
        on_close: called with a :class:`CloseInfo` after each failed attempt and each close.
        recover: in rooms that keep history, ask for what was missed at each reconnect and
            read broadcasts out of their envelopes (see :mod:`partydeco.client.recovery`).
        connect_options: extra keyword arguments for :func:`websockets.asyncio.client.connect`
            (``ssl``, ``proxy``, ``ping_interval``, ``compression``...).
        rng: random source for jitter, a function returning a float in ``[0, 1)``.
    """

    def __init__(
        self,
        host: str,
        room: str | None = None,
        *,
        party: str = "main",
        prefix: str = "parties",
        path: str | None = None,
        base_path: str | None = None,
        protocol: Literal["ws", "wss"] | None = None,
        id: str | None = None,
        query: QuerySource | None = None,
        headers: HeadersSource | None = None,
        subprotocols: Sequence[str] | None = None,
        backoff: Backoff | None = None,
        max_retries: int | None = None,
        min_uptime: float = 5.0,
        connect_timeout: float = 4.0,
        max_buffered: int = 1000,
        overflow: Literal["drop_oldest", "error"] = "drop_oldest",
        should_reconnect: Callable[[CloseInfo], bool] = default_should_reconnect,
        max_size: int = 1024 * 1024,
        max_inbox: int = 1024,
        on_open: OpenCallback | None = None,
        on_close: CloseCallback | None = None,
        connect_options: Mapping[str, Any] | None = None,
        rng: Callable[[], float] = random.random,
        recover: bool = True,
    ) -> None:
        if max_retries is not None and max_retries < 0:
            raise ValueError("max_retries must be >= 0 or None")
        if max_inbox < 1:
            raise ValueError("need max_inbox >= 1")
        self.address = RoomAddress(
            host, room, party, prefix, path, base_path=base_path, protocol=protocol
        )
        #: The ``_pk`` connection id, stable for the life of this object.
        self.id = id if id is not None else str(uuid.uuid4())
        self.backoff = backoff if backoff is not None else Backoff()
        self.max_retries = max_retries
        self.min_uptime = min_uptime
        self.connect_timeout = connect_timeout
        self.should_reconnect = should_reconnect
        self._query = query
        self._headers = headers
        self._subprotocols = [Subprotocol(p) for p in subprotocols or ()]
        self._max_size = max_size
        self._max_inbox = max_inbox
        self._on_open = on_open
        self._on_close = on_close
        self._connect_options = dict(connect_options or {})
        self._rng = rng
        #: the room's history position (``None`` with ``recover=False``).
        self.recovery = Recovery() if recover else None

        self._buffer = OfflineBuffer(max_buffered, overflow)
        self._inbox: deque[Message] = deque()  # received, not yet read
        self._cond = asyncio.Condition()  # guards the state below; notified on every change
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._is_open = False
        self._closed_by_user = False  # close() was called: the socket is finished
        self._stopping = False  # the connection loop must exit (close() or reconnect())
        self._stop_error: ReconnectStoppedError | None = None
        self._retry_count = 0
        self._url: str | None = None
        #: The last failure or close seen (``None`` before any).
        self.close_info: CloseInfo | None = None

    # ------------------------------------------------------------------ properties
    @property
    def max_buffered(self) -> int:
        """How many messages ``send`` keeps while offline."""
        return self._buffer.max_messages

    @property
    def dropped(self) -> int:
        """How many buffered messages the ``"drop_oldest"`` policy discarded."""
        return self._buffer.dropped

    @property
    def url(self) -> str | None:
        """The URL of the latest attempt, query included (it may hold a token: do not log)."""
        return self._url

    @property
    def room_url(self) -> str:
        """The room's WebSocket URL without query string."""
        return self.address.room_url()

    @property
    def is_open(self) -> bool:
        """True while a connection is open and its offline buffer has been flushed."""
        return self._is_open

    @property
    def retry_count(self) -> int:
        """The number of the current attempt since the last stable connection (0 = first)."""
        return self._retry_count

    @property
    def buffered(self) -> int:
        """How many messages wait in the offline buffer."""
        return len(self._buffer)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start connecting in the background (needs a running event loop); idempotent."""
        if self._closed_by_user:
            raise SocketClosedError("this PartySocket was closed; call reconnect() to reopen it")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"PartySocket {self.room_url}"
            )

    async def __aenter__(self) -> PartySocket:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_open(self) -> None:
        """Wait until the socket is open (bound the wait with ``asyncio.timeout``).

        Raises:
            ReconnectStoppedError: the socket gave up (e.g. the handshake was refused).
            SocketClosedError: :meth:`close` was called.
        """
        self.start()
        async with self._cond:
            await self._cond.wait_for(lambda: self._is_open or self._finished)
            if not self._is_open:
                self._raise_finished()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection and stop reconnecting; messages already received stay readable.

        The offline buffer is kept (see :meth:`drain_buffered`). Safe to call more than once.
        """
        self._closed_by_user = True
        self._stopping = True
        await self._shutdown(code, reason)

    async def reconnect(self, code: int = 1000, reason: str = "") -> None:
        """Close the current connection (if any) and connect again from a fresh retry count.

        Also restarts a socket that was closed or gave up.
        """
        self._stopping = True  # the running loop exits instead of retrying
        await self._shutdown(code, reason)
        async with self._cond:
            self._stopping = False
            self._closed_by_user = False
            self._stop_error = None
            self._task = None
            self._cond.notify_all()
        self.start()

    async def _shutdown(self, code: int, reason: str) -> None:
        task, ws = self._task, self._ws
        if ws is not None:
            await ws.close(code, reason)
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.wait({task})
        async with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------------ sending
    async def send(self, message: str | bytes | bytearray | memoryview) -> bool:
        """Send a text (``str``) or binary frame; buffer it while offline.

        Returns ``True`` if it went out now, ``False`` if it was buffered (or dropped when the
        buffer holds ``max_buffered == 0`` messages).

        Raises:
            BufferFullError: the buffer is full and ``overflow="error"``.
            ReconnectStoppedError: the socket gave up; nothing would ever send the message.
            SocketClosedError: :meth:`close` was called.
        """
        data: Message = message if isinstance(message, str | bytes) else bytes(message)
        if self._stop_error is not None or self._closed_by_user:
            self._raise_finished()
        self.start()
        ws = self._ws
        if self._is_open and ws is not None and not self._buffer:
            try:
                await ws.send(data)
                return True
            except ConnectionClosed:
                # Not written: keep it ahead of anything buffered while we awaited.
                self._buffer.put_back(data)
                return False
        self._buffer.append(data)
        return False

    def drain_buffered(self) -> list[Message]:
        """Remove and return the messages waiting in the offline buffer, oldest first."""
        return self._buffer.drain()

    # ------------------------------------------------------------------ receiving
    def __aiter__(self) -> PartySocket:
        return self

    async def __anext__(self) -> Message:
        if not self._finished:
            self.start()
        async with self._cond:
            await self._cond.wait_for(lambda: bool(self._inbox) or self._finished)
            if self._inbox:
                message = self._inbox.popleft()
                self._cond.notify_all()
                return message
        if self._stop_error is not None:
            raise self._stop_error
        raise StopAsyncIteration

    async def recv(self) -> Message:
        """Return the next message (bound the wait with ``asyncio.timeout``).

        Raises:
            ReconnectStoppedError: the socket gave up and every received message was read.
            SocketClosedError: the socket was closed and every received message was read.
        """
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise SocketClosedError("this PartySocket was closed") from None

    # ------------------------------------------------------------------ fetch
    fetch = staticmethod(fetch_room)

    # ------------------------------------------------------------------ internals
    @property
    def _finished(self) -> bool:
        return self._closed_by_user or self._stop_error is not None

    def _raise_finished(self) -> None:
        if self._stop_error is not None:
            raise self._stop_error
        raise SocketClosedError("this PartySocket was closed; call reconnect() to reopen it")

    async def _run(self) -> None:
        """Run the connection loop; an unexpected failure stops the socket instead of hanging."""
        try:
            await self._loop()
        except Exception as exc:
            logger.exception("%s: PartySocket stopped on an unexpected error", self.room_url)
            info = CloseInfo(error=exc)
            await self._give_up(ReconnectStoppedError(f"internal error: {exc!r}", info, 0))

    async def _loop(self) -> None:
        """Connect, serve, and reconnect until closed or told to stop."""
        loop = asyncio.get_running_loop()
        attempt = 0
        failures = 0  # failed attempts since the last successful open
        while not self._stopping:
            if attempt > 0:
                if self.max_retries is not None and attempt > self.max_retries:
                    info = self.close_info or CloseInfo()
                    message = f"gave up after {failures} failed attempts in a row"
                    await self._give_up(RetriesExhaustedError(message, info, failures))
                    return
                await asyncio.sleep(self.backoff.delay(attempt, self._rng))
            self._retry_count = attempt
            ws, info = await self._attempt()
            if ws is None:
                failures += 1
            else:
                failures = 0
                opened_at = loop.time()
                info = await self._serve(ws)
                if loop.time() - opened_at >= self.min_uptime:
                    attempt = 0
            if self._stopping:
                return
            self.close_info = info
            await call_back(self.room_url, self._on_close, info)
            if not self.should_reconnect(info):
                await self._give_up(stopped_error(info, failures))
                return
            attempt += 1

    async def _attempt(self) -> tuple[ClientConnection | None, CloseInfo]:
        """Make one connection attempt; return the open connection or why it failed."""
        try:
            query = await resolve(self._query)
            if self.recovery is not None:
                query = {**query, **self.recovery.query()}
            headers = await resolve(self._headers)
            self._url = self.address.ws_url(self.id, query)
            options: dict[str, Any] = {
                "additional_headers": dict(headers) or None,
                "subprotocols": self._subprotocols or None,
                "open_timeout": self.connect_timeout,
                "max_size": self._max_size,
                **self._connect_options,
            }
            ws = await connect(self._url, **options)
        except InvalidStatus as exc:
            response = exc.response
            logger.debug("%s: handshake refused with %s", self.room_url, response.status_code)
            return None, CloseInfo(status=response.status_code, body=bytes(response.body or b""))
        except Exception as exc:
            logger.debug("%s: attempt failed: %s", self.room_url, type(exc).__name__)
            return None, CloseInfo(error=exc)
        return ws, CloseInfo()

    async def _serve(self, ws: ClientConnection) -> CloseInfo:
        """Flush the buffer, announce the open, then read until the connection ends."""
        self._ws = ws
        try:
            if self._stopping:
                await ws.close()
            while self._buffer:
                await ws.send(self._buffer.first())
                self._buffer.pop_first()
            async with self._cond:
                self._is_open = True
                self._cond.notify_all()
            await call_back(self.room_url, self._on_open)
            async for frame in ws:
                message = frame if self.recovery is None else self.recovery.receive(frame)
                if message is None:
                    continue
                async with self._cond:
                    await self._cond.wait_for(
                        lambda: len(self._inbox) < self._max_inbox or self._stopping
                    )
                    self._inbox.append(message)
                    self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            async with self._cond:
                self._is_open = False
                self._ws = None
                self._cond.notify_all()
            if ws.close_code is None:  # leaving through cancellation: do not leak the socket
                await ws.close()
        code = ws.close_code if ws.close_code is not None else 1006
        return CloseInfo(code=code, reason=ws.close_reason or "")

    async def _give_up(self, error: ReconnectStoppedError) -> None:
        logger.info("%s: not reconnecting: %s", self.room_url, error)
        async with self._cond:
            self._stop_error = error
            self._cond.notify_all()
