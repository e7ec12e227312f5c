"""Nine fixes to Hypercorn's WebSocket handling, connections and access log, applied
when Hypercorn serves partydeco.

Each fix replaces or wraps methods of Hypercorn (0.17-0.18) or wsproto (1.2-1.3).
:func:`apply` installs them, once per process: the runner (``partydeco serve``,
``party.run()``) calls it before serving, and the ASGI entry at lifespan start-up
when Hypercorn runs the lifespan (``hypercorn app:party``); never under Uvicorn or a
test client. Before replacing a method, :func:`apply` compares its source with the
versions the fix was written for; a method that changed upstream is left alone and
the fix is skipped with a warning, so a stale copy never replaces newer code.

1. ``bounded-inflation``: inflation is bounded. Hypercorn always negotiates
   permessage-deflate, and wsproto inflates each frame without a size limit: a 100 KB
   frame of compressed zeros becomes 100 MB in memory before Hypercorn's message-size
   check runs. :class:`~partydeco.server.wsproto_deflate.RoomDeflate` stops inflating
   at the app's ``max_message_size`` and fails the connection with 1009 instead.
   Upstream: no report found in wsproto or Hypercorn (the same bug was fixed in
   tornado #2391 and websockets #1715); to report: "wsproto: PerMessageDeflate
   inflates without a limit".
2. ``close-codes``: the client's close code reaches the app. Hypercorn reports every
   close the client starts as 1006; with this fix ``websocket.disconnect`` carries the
   code and reason from the client's close frame (or of the close partydeco sent when
   it failed the connection below the app), so ``on_close`` sees them.
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
   :func:`~partydeco.server.hypercorn_timers.read_data` keeps the same rule with one
   self-re-arming timer.
   Upstream: no report found; to report: "asyncio TCPServer._read_data: wait_for per
   read costs a task and a timer per read".
5. ``access-once``: one access line per HTTP request, with its status. When a client
   closes its connection after the whole body but before the app's last (empty) body
   message, which Quart sends for streamed and file responses, Hypercorn logged
   ``"GET /chat.js 1.1" - - 0.004s`` and often a second line when that message came.
   With the fix the response is logged once, when the client leaves.
   Upstream: no report found; to report: "http_stream: a StreamClosed during the
   response logs '- -', then the response again".
6. ``inbound-limits``: what a client's frames may cost, below the app (see
   :mod:`~partydeco.server.hypercorn_inbound`): message size in UTF-8 bytes checked
   before a message is assembled (Hypercorn counts characters), a process-wide
   budget and a timeout for unfinished messages, pings and pongs counted against the
   connection's message rate and answered once per read, and a close frame (1009 for
   a bomb) when wsproto fails a connection, where Hypercorn sent none.
   Upstream: to report: "ws_stream: websocket_max_message_size counts characters for
   text", "ws_stream: a ParseFailed close sends no close frame", "ws_stream: one pong
   write per ping".
7. ``shared-deflate``: a broadcast is framed and compressed once, not once per
   receiver: every offer is answered with ``server_no_context_takeover`` and
   :class:`RoomConnection` sends the frame
   :func:`~partydeco.server.wsproto_deflate.frame` builds once per message.
   Upstream: none (a server choice; Hypercorn hard-codes the extension,
   pgjones/hypercorn#307).
8. ``shutdown-signal``: partydeco hears that Hypercorn's worker is stopping when it
   starts to, not after its graceful timeout. Under ``hypercorn app:party`` the ASGI
   lifespan shutdown comes only after Hypercorn has waited for (then cancelled) the
   open connections, too late to close them with 1001; :func:`on_shutdown` callbacks
   run as the worker's ``terminated`` event is set, at the start of that wait.
   Upstream: none (ASGI has no "shutting down" message before lifespan.shutdown).
9. ``connection-cycle``: a connection is freed as it ends, not by the cyclic GC:
   ``TCPServer`` and its ``ProtocolWrapper`` hold each other (through the bound
   ``protocol_send``), with all of the connection's state; the reader of
   ``read-timer`` drops the protocol once ``TCPServer.run``'s task is done.
   Upstream: to report: "TCPServer and ProtocolWrapper form a reference cycle per
   connection" (set ``self.protocol = None`` at the end of ``run``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import logging
import time
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING, Any, ClassVar

from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Event, TextMessage

from .hypercorn_inbound import DEFAULT_BUDGET, StreamLimits, after_close, handle_events
from .hypercorn_timers import read_data, read_timer, send_pings, stream_closed
from .wsproto_deflate import RoomDeflate, frame

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["RoomConnection", "apply", "on_shutdown"]

logger = logging.getLogger("partydeco")


class RoomConnection(Connection):
    """A wsproto connection that remembers the close its peer sent (``close-codes``)
    and sends whole messages as frames built once per message (``shared-deflate``)."""

    #: whether the peer's close is recorded (``close-codes``; set by :func:`apply`).
    record: ClassVar[bool] = False
    #: whether outgoing messages go through the shared frames (set by :func:`apply`).
    shared: ClassVar[bool] = False

    #: the close code and reason the app is told: the peer's, or partydeco's own.
    peer_close: tuple[int, str] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        deflate = None
        if self.shared:
            for extension in self._proto.extensions:
                if isinstance(extension, RoomDeflate) and extension.server_no_context_takeover:
                    deflate = extension
        self._deflate = deflate
        self._framed = self.shared and (deflate is not None or not self._proto.extensions)

    def events(self) -> Any:
        for event in super().events():
            # a close frame that arrived changes the state; wsproto failing to parse does not
            if (
                self.record
                and isinstance(event, CloseConnection)
                and self.peer_close is None
                and self.state in (ConnectionState.REMOTE_CLOSING, ConnectionState.CLOSED)
            ):
                self.peer_close = (int(event.code), event.reason or "")
            yield event

    def send(self, event: Event) -> bytes:
        if (
            self._framed
            and type(event) in (TextMessage, BytesMessage)
            and event.message_finished  # type: ignore[attr-defined]
            and self.state is ConnectionState.OPEN
        ):
            return frame(event.data, self._deflate)  # type: ignore[attr-defined]
        return super().send(event)


def _wrap_handle(handle: Any, limits: bool) -> Any:
    """Wrap ``WSStream.handle``: the disconnect message carries the close code the
    connection recorded; with *limits*, each stream gets its :class:`StreamLimits`,
    which the app finds in its scope's extensions as ``"partydeco.limits"``."""
    from hypercorn.protocol.events import Data, Request, StreamClosed

    async def patched(self: Any, event: Event) -> None:
        if isinstance(event, Data):
            stream_limits = getattr(self, "_partydeco_limits", None)
            if (
                stream_limits is not None
                and stream_limits.failed
                and await after_close(self, stream_limits, event.data)
            ):
                return
        elif isinstance(event, StreamClosed):
            stream_closed(self)
            stream_limits = getattr(self, "_partydeco_limits", None)
            if stream_limits is not None:
                stream_limits.release()
                stream_limits.stream = None  # no cycle left for the GC to find
            connection = getattr(self, "connection", None)
            peer_close = getattr(connection, "peer_close", None)
            if peer_close is not None and self.app_put:
                put = self.app_put

                async def app_put(message: dict[str, Any]) -> None:
                    if message.get("type") == "websocket.disconnect":
                        message = {**message, "code": peer_close[0], "reason": peer_close[1]}
                    await put(message)

                self.app_put = app_put
        elif limits and isinstance(event, Request):
            self._partydeco_limits = StreamLimits(self, self.config.websocket_max_message_size)
            await handle(self, event)
            if getattr(self, "scope", None) is not None:
                self.scope["extensions"]["partydeco.limits"] = self._partydeco_limits
            return
        await handle(self, event)

    patched.partydeco_patched = True  # type: ignore[attr-defined]
    return patched


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
    # The fixes added in 0.3 were checked against Hypercorn 0.17.3 and 0.18.0 and
    # wsproto 1.2.0 and 1.3.2; versions in between are skipped with the warning.
    ("hypercorn.protocol.ws_stream", "WSStream", "_handle_events"): frozenset(
        {"dd069f20438a63b9"}
    ),
    ("wsproto.connection", "Connection", "send"): frozenset(
        {"1134ac473675e187", "198c0a3e94aa0ff5"}
    ),
    ("wsproto.extensions", "PerMessageDeflate", "accept"): frozenset(
        {"92c6759a6ccdd11e", "073fd493c216e25e"}
    ),
    ("wsproto.extensions", "PerMessageDeflate", "frame_outbound"): frozenset(
        {"c46eefa37a38600c", "86cec8da28c2e8a9"}
    ),
    ("hypercorn.asyncio.worker_context", "WorkerContext", "__init__"): frozenset(
        {"a30ff311492525aa", "4404b6eb656a10a0"}
    ),
    ("hypercorn.asyncio.run", "", "worker_serve"): frozenset(
        {"7afd08f2168e97f2", "be69cf8d002a9f84"}
    ),
    ("hypercorn.asyncio.tcp_server", "TCPServer", "run"): frozenset(
        {"7d9b5953c5ce88bc", "bae4df0e7b11f956"}
    ),
}

#: Which upstream methods each fix depends on ("" as the class: a module-level function).
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
    "inbound-limits": (
        ("hypercorn.protocol.ws_stream", "WSStream", "handle"),
        ("hypercorn.protocol.ws_stream", "WSStream", "_handle_events"),
    ),
    "shared-deflate": (
        ("wsproto.connection", "Connection", "send"),
        ("wsproto.extensions", "PerMessageDeflate", "accept"),
        ("wsproto.extensions", "PerMessageDeflate", "frame_outbound"),
    ),
    "shutdown-signal": (
        ("hypercorn.asyncio.worker_context", "WorkerContext", "__init__"),
        ("hypercorn.asyncio.run", "", "worker_serve"),
    ),
    "connection-cycle": (
        ("hypercorn.asyncio.tcp_server", "TCPServer", "run"),
        ("hypercorn.asyncio.tcp_server", "TCPServer", "_read_data"),
    ),
}

_applied: dict[str, bool] = {}
_shutdown_callbacks: list[Callable[[], None]] = []

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


def _fingerprint(module: str, cls: str, method: str) -> str | None:
    """A digest of the method's (or, without *cls*, the function's) syntax tree as
    written in the installed module's source (formatting and comments do not count),
    or ``None`` if it cannot be found."""
    try:
        tree = ast.parse(inspect.getsource(importlib.import_module(module)))
    except (ImportError, OSError, SyntaxError, TypeError):
        return None
    body: list[ast.stmt] = tree.body
    if cls:
        body = next(
            (n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls), []
        )
    for item in body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == method:
            return hashlib.sha256(ast.dump(item).encode()).hexdigest()[:16]
    return None


def _unchanged(fix: str) -> bool:
    changed = [
        ".".join(part for part in (module, cls, method) if part)
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


def apply(config: Config) -> dict[str, bool]:
    """Install the fixes whose upstream code is as expected; return which are in place.

    *config*'s ``max_message_size`` bounds inflation, process-wide: with several apps
    in one process the largest applies to all of them. (Every other limit is the
    socket's own, set by its app.)
    """
    from hypercorn.asyncio import run, tcp_server
    from hypercorn.protocol import http_stream, ws_stream

    if not _applied:
        for fix in FIXES:
            _applied[fix] = _unchanged(fix)
        _applied["shared-deflate"] &= _applied["bounded-inflation"]
        _applied["connection-cycle"] &= _applied["read-timer"]  # its reader does it
        if _applied["close-codes"] or _applied["inbound-limits"]:
            ws_stream.WSStream.handle = _wrap_handle(  # type: ignore[method-assign]
                ws_stream.WSStream.handle, _applied["inbound-limits"]
            )
        if _applied["close-codes"] or _applied["shared-deflate"]:
            RoomConnection.record = _applied["close-codes"]
            RoomConnection.shared = _applied["shared-deflate"]
            ws_stream.Connection = RoomConnection  # type: ignore[attr-defined]
        if _applied["inbound-limits"]:
            ws_stream.WSStream._handle_events = handle_events  # type: ignore[method-assign]
        if _applied["ping-stop"]:
            ws_stream.WSStream._send_pings = send_pings  # type: ignore[method-assign]
        if _applied["read-timer"]:
            read_timer.original = tcp_server.TCPServer._read_data
            tcp_server.TCPServer._read_data = read_data  # type: ignore[method-assign]
            read_timer.forget_protocol = _applied["connection-cycle"]
        if _applied["access-once"]:
            stream = http_stream.HTTPStream
            stream.handle = _log_leaving_client(stream.handle)  # type: ignore[method-assign]
            stream._send_closed = _send_closed_logging_once()  # type: ignore[method-assign]
        if _applied["bounded-inflation"]:
            RoomDeflate.shared = _applied["shared-deflate"]
            ws_stream.PerMessageDeflate = RoomDeflate  # type: ignore[attr-defined]
        if _applied["shutdown-signal"]:
            run.WorkerContext = _context_class(run.WorkerContext)  # type: ignore[attr-defined]
        RoomDeflate.max_message_size = config.max_message_size
        DEFAULT_BUDGET.limit = config.max_unfinished_bytes
    else:
        RoomDeflate.max_message_size = max(RoomDeflate.max_message_size, config.max_message_size)
    return dict(_applied)


def on_shutdown(callback: Callable[[], None]) -> Callable[[], None]:
    """Call *callback* when Hypercorn's worker starts to stop (``shutdown-signal``);
    return the function that unregisters it."""
    _shutdown_callbacks.append(callback)

    def unregister() -> None:
        if callback in _shutdown_callbacks:
            _shutdown_callbacks.remove(callback)

    return unregister


def _context_class(base: type[Any]) -> type[Any]:
    """Hypercorn's ``WorkerContext`` whose ``terminated`` event runs the
    :func:`on_shutdown` callbacks when it is set."""
    event_class = base.event_class

    class TerminatedEvent(event_class):  # type: ignore[misc, valid-type]
        async def set(self) -> None:
            first = not self.is_set()
            await super().set()
            if first:
                for callback in list(_shutdown_callbacks):
                    callback()

    class WorkerContext(base):  # type: ignore[misc]
        def __init__(self, max_requests: int | None) -> None:
            super().__init__(max_requests)
            self.terminated = TerminatedEvent()

    return WorkerContext
