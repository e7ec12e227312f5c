"""Five fixes to Hypercorn's WebSocket handling and access log, applied when Hypercorn
serves partydeco.

Each fix replaces or wraps methods of Hypercorn (0.17-0.18) or wsproto (1.2-1.3).
:func:`apply` installs them, once per process: the runner (``partydeco serve``,
``party.run()``) calls it before serving, and the ASGI entry at lifespan start-up
when Hypercorn is the server (``hypercorn app:party``); never under Uvicorn or a
test client. Before replacing a method, :func:`apply` compares its source with the
versions the fix was written for; a method that changed upstream is left alone and
the fix is skipped with a warning, so a stale copy never replaces newer code.

1. ``bounded-inflation``: inflation is bounded. Hypercorn always negotiates
   permessage-deflate, and wsproto inflates each frame without a size limit: a 100 KB
   frame of compressed zeros becomes 100 MB in memory before Hypercorn's message-size
   check runs. :class:`BoundedPerMessageDeflate` stops inflating at the app's
   ``max_message_size`` and fails the connection with 1009 instead. Upstream: no
   report found in wsproto or Hypercorn (the same bug was fixed in tornado #2391 and
   websockets #1715); to report: "wsproto: PerMessageDeflate inflates without a limit".
2. ``close-codes``: the client's close code reaches the app. Hypercorn reports every
   close the client starts as 1006; with this fix ``websocket.disconnect`` carries the
   code and reason from the client's close frame, so ``on_close`` sees them.
   Upstream: pgjones/hypercorn#127 (open).
3. ``ping-stop``: pings stop with their socket. Hypercorn's ping loop sleeps a whole
   interval before it notices that its socket closed, keeping the connection's task
   (and a graceful shutdown) waiting meanwhile; the replacement waits on a future and
   a timer, woken when the stream closes, and sends its first ping one interval after
   the handshake. It uses asyncio directly: partydeco refuses Hypercorn's trio worker.
   Upstream: no report found; to report: "ws_stream: _send_pings outlives its stream
   by up to websocket_ping_interval".
4. ``read-timer``: the read timeout costs one timer per connection, not one per read.
   Hypercorn wraps every socket read in ``asyncio.wait_for`` when ``read_timeout`` is
   set (partydeco sets it: with pings, it is what drops dead peers), which makes a task
   and a timer for each read, about a sixth of the server's time in an echo benchmark.
   :func:`_read_data` keeps the same rule with one self-re-arming timer.
   Upstream: no report found; to report: "asyncio TCPServer._read_data: wait_for per
   read costs a task and a timer per read".
5. ``access-once``: one access line per HTTP request, with its status. When a client
   closes its connection after the whole body but before the app's last (empty) body
   message, which Quart sends for streamed and file responses, Hypercorn logged
   ``"GET /chat.js 1.1" - - 0.004s`` and often a second line when that message came.
   With the fix the response is logged once, when the client leaves.
   Upstream: no report found; to report: "http_stream: a StreamClosed during the
   response logs '- -', then the response again".
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import importlib
import inspect
import logging
import sys
import time
import zlib
from importlib import metadata
from ssl import SSLError
from typing import Any, ClassVar

from wsproto.connection import Connection
from wsproto.events import CloseConnection, Event
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason

__all__ = ["BoundedPerMessageDeflate", "RecordingConnection", "apply", "serving_with_hypercorn"]

logger = logging.getLogger("partydeco")


class BoundedPerMessageDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate, refusing messages that inflate past a limit."""

    #: the largest inflated message, in bytes (set by :func:`apply`).
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
        await _original_read_data(self)
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



# -- applying the fixes ---------------------------------------------------------------------

#: Fingerprints (see :func:`_fingerprint`) of the upstream methods each fix was written
#: for: Hypercorn 0.17.0-0.18.0 and wsproto 1.2.0-1.3.2.
KNOWN: dict[tuple[str, str, str], frozenset[str]] = {
    ("hypercorn.protocol.ws_stream", "WSStream", "handle"): frozenset(
        {"b7880b74a8cbb7c7", "548663df8511162e"}
    ),
    ("hypercorn.protocol.ws_stream", "WSStream", "_send_pings"): frozenset({"5ba6599006ff178e"}),
    ("hypercorn.asyncio.tcp_server", "TCPServer", "_read_data"): frozenset({"8ee1de4baf39241a"}),
    ("wsproto.extensions", "PerMessageDeflate", "frame_inbound_payload_data"): frozenset(
        {"b0ea2bc69149b3f9", "834dbe209687aa45"}
    ),
    ("wsproto.extensions", "PerMessageDeflate", "frame_inbound_complete"): frozenset(
        {"a9c7caf9caa5b2aa", "78cf13a9d0608ef4"}
    ),
    ("wsproto.connection", "Connection", "events"): frozenset(
        {"e160e0063efcaa86", "790f341e38ee95d6", "d8c1a8d1797aeb97"}
    ),
    ("hypercorn.protocol.http_stream", "HTTPStream", "handle"): frozenset(
        {"45bfc581e95a4336", "87b6528babeb7c8c"}
    ),
    ("hypercorn.protocol.http_stream", "HTTPStream", "_send_closed"): frozenset(
        {"2e31fc7f8ddfaa62"}
    ),
}

#: Which upstream methods each fix depends on.
FIXES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "bounded-inflation": (
        ("wsproto.extensions", "PerMessageDeflate", "frame_inbound_payload_data"),
        ("wsproto.extensions", "PerMessageDeflate", "frame_inbound_complete"),
    ),
    "close-codes": (
        ("hypercorn.protocol.ws_stream", "WSStream", "handle"),
        ("wsproto.connection", "Connection", "events"),
    ),
    "ping-stop": (("hypercorn.protocol.ws_stream", "WSStream", "_send_pings"),),
    "read-timer": (("hypercorn.asyncio.tcp_server", "TCPServer", "_read_data"),),
    "access-once": (
        ("hypercorn.protocol.http_stream", "HTTPStream", "handle"),
        ("hypercorn.protocol.http_stream", "HTTPStream", "_send_closed"),
    ),
}

_applied: dict[str, bool] = {}

#: Set on an ``HTTPStream`` whose access line was written when its client left.
_LOGGED = "_partydeco_access_logged"


def _log_leaving_client(handle: Any) -> Any:
    """``HTTPStream.handle``: a client leaving after the response started is logged with
    that response (not ``- -``), and only then."""
    from hypercorn.protocol.events import StreamClosed
    from hypercorn.protocol.http_stream import ASGIHTTPState

    response = ASGIHTTPState.RESPONSE

    async def patched(self: Any, event: Any) -> None:
        if type(event) is not StreamClosed or self.state is not response:
            await handle(self, event)
            return
        # Hypercorn's own branch for StreamClosed, but for the response it logs
        self.closed = True
        setattr(self, _LOGGED, True)
        await self.config.log.access(self.scope, self.response, time.time() - self.start_time)
        if self.app_put is not None:
            await self.app_put({"type": "http.disconnect"})

    return patched


def _send_closed_logging_once() -> Any:
    """``HTTPStream._send_closed``, which logs the response unless it was logged already."""
    from hypercorn.protocol.events import EndBody, StreamClosed
    from hypercorn.protocol.http_stream import ASGIHTTPState

    closed = ASGIHTTPState.CLOSED

    async def send_closed(self: Any) -> None:
        await self.send(EndBody(stream_id=self.stream_id))
        self.state = closed
        if not getattr(self, _LOGGED, False):
            await self.config.log.access(self.scope, self.response, time.time() - self.start_time)
        await self.send(StreamClosed(stream_id=self.stream_id))

    return send_closed
_original_read_data: Any = None


def _fingerprint(module: str, cls: str, method: str) -> str | None:
    """A digest of the method's syntax tree as written in the installed module's source
    (formatting and comments do not count), or ``None`` if it cannot be found."""
    try:
        tree = ast.parse(inspect.getsource(importlib.import_module(module)))
    except (ImportError, OSError, SyntaxError, TypeError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == method:
                    return hashlib.sha256(ast.dump(item).encode()).hexdigest()[:16]
    return None


def _unchanged(fix: str) -> bool:
    changed = [
        f"{module}.{cls}.{method}"
        for module, cls, method in FIXES[fix]
        if _fingerprint(module, cls, method) not in KNOWN[(module, cls, method)]
    ]
    if changed:
        logger.warning(
            "partydeco: not applying its %r fix to Hypercorn %s / wsproto %s: %s changed "
            "since the versions it was written for (Hypercorn 0.17-0.18, wsproto 1.2-1.3); "
            "check that the installed versions still need it",
            fix, _version("hypercorn"), _version("wsproto"), ", ".join(changed),
        )
    return not changed


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def apply(max_message_size: int) -> dict[str, bool]:
    """Install the fixes whose upstream code is as expected; return which are in place.

    *max_message_size* bounds inflation. The setting is process-wide: with several
    apps in one process the largest limit applies to all of them.
    """
    from hypercorn.asyncio import tcp_server
    from hypercorn.protocol import http_stream, ws_stream

    if not _applied:
        global _original_read_data
        for fix in FIXES:
            _applied[fix] = _unchanged(fix)
        if _applied["close-codes"]:
            ws_stream.WSStream.handle = _forward_close_code(ws_stream.WSStream.handle)  # type: ignore[method-assign]
            ws_stream.Connection = RecordingConnection  # type: ignore[attr-defined]
        if _applied["ping-stop"]:
            ws_stream.WSStream._send_pings = _send_pings  # type: ignore[method-assign]
        if _applied["read-timer"]:
            _original_read_data = tcp_server.TCPServer._read_data
            tcp_server.TCPServer._read_data = _read_data  # type: ignore[method-assign]
        if _applied["access-once"]:
            stream = http_stream.HTTPStream
            stream.handle = _log_leaving_client(stream.handle)  # type: ignore[method-assign]
            stream._send_closed = _send_closed_logging_once()  # type: ignore[method-assign]
        if _applied["bounded-inflation"]:
            BoundedPerMessageDeflate.max_message_size = max_message_size
            ws_stream.PerMessageDeflate = BoundedPerMessageDeflate  # type: ignore[attr-defined]
    elif _applied["bounded-inflation"]:
        BoundedPerMessageDeflate.max_message_size = max(
            BoundedPerMessageDeflate.max_message_size, max_message_size
        )
    return dict(_applied)


def serving_with_hypercorn() -> bool:
    """Whether Hypercorn's WebSocket protocol is loaded in this process, i.e. whether
    Hypercorn (rather than another server or a test client) is serving."""
    return "hypercorn.protocol.ws_stream" in sys.modules
