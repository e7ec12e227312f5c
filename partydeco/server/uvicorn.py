"""Serving an app with Uvicorn: the fast lane (``party.run(server="uvicorn")``,
``partydeco serve --server uvicorn``).

Uvicorn with uvloop, httptools and the ``websockets`` package's sans-I/O protocol
frames WebSocket messages in C where Hypercorn (wsproto) does it in Python. The
``uvicorn`` extra installs all of them. Served this way, an app keeps what it has on
Hypercorn:

- pings every 20 s, and a peer that answers nothing for 60 s is dropped;
- on SIGINT or SIGTERM every socket is closed with 1001 and its ``on_close`` runs
  before Uvicorn closes what is left (Uvicorn itself would send 1012);
- messages, compressed ones included, are bounded by ``max_message_size`` while
  they are read (``websockets`` stops inflating at the limit and closes with 1009);
- a peer that sends pings but does not read the answers is not answered until it
  reads: its pongs never pile up in memory;
- the access log shows no query string (where ``?token=`` lives) for any URL;
- a request's line and headers must arrive within 60 s and fit in 64 KiB
  (:func:`guarded`), where Uvicorn alone waits forever and buffers megabytes;
- ``X-Forwarded-*`` headers are not trusted by the server: partydeco's own
  ``trusted_proxies`` decides (see the security guide).

With httptools, each HTTP response's head and body leave in one write, where
Uvicorn alone makes two (:class:`~partydeco.server.heldhead.HeldHead`).

Without ``websockets`` Uvicorn would fall back to wsproto in pure Python (about half
the speed of the fast lane on echo round trips), and without ``httptools`` to h11:
start-up warns then, and on wsproto permessage-deflate is turned off, because
wsproto inflates a frame without a limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import signal
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .heldhead import HeldHead

if TYPE_CHECKING:
    from ..app import App

__all__ = [
    "HEADER_LIMIT",
    "PING_INTERVAL",
    "READ_TIMEOUT",
    "HideQuery",
    "UvicornServer",
    "bind",
    "fallbacks",
    "guarded",
    "serve",
    "sweep_interval",
    "uvicorn_config",
]

logger = logging.getLogger("partydeco")

#: Seconds a peer may stay silent before it is dropped: a WebSocket peer that
#: answers no ping, or an HTTP client that has not sent a whole request's headers
#: (Hypercorn's ``read_timeout``, as partydeco sets it).
READ_TIMEOUT = 60.0
#: Seconds between WebSocket pings.
PING_INTERVAL = 20.0
#: Bytes a request's line and headers may take (Hypercorn allows 16 KiB with h11).
HEADER_LIMIT = 64 * 1024


def fallbacks() -> list[str]:
    """What Uvicorn would run in pure Python here, each as a one-line warning."""
    found = []
    if importlib.util.find_spec("websockets") is None:
        found.append(
            "Uvicorn falls back to wsproto for WebSockets (about half the speed, "
            "permessage-deflate off): pip install 'partydeco[uvicorn]'"
        )
    if importlib.util.find_spec("httptools") is None:
        found.append(
            "Uvicorn falls back to h11 for HTTP (slower): pip install 'partydeco[uvicorn]'"
        )
    return found


def uvicorn_config(
    app: App,
    host: str = "127.0.0.1",
    port: int = 1999,
    *,
    read_timeout: float = READ_TIMEOUT,
    **options: Any,
) -> uvicorn.Config:
    """The Uvicorn configuration partydeco serves with (see the module).

    *read_timeout* is how long a peer may stay silent: an HTTP client sending a
    request's headers, or a WebSocket peer answering the ping sent every
    ``ws_ping_interval`` seconds (it must answer within ``read_timeout -
    ws_ping_interval``). Any ``uvicorn.Config`` argument can be overridden in *options*.

    Raises:
        TypeError: an option ``uvicorn.Config`` does not take.
        ValueError: *read_timeout* is not longer than the ping interval.
    """
    fast_ws = importlib.util.find_spec("websockets") is not None
    interval = options.get("ws_ping_interval", PING_INTERVAL)
    if interval is not None and read_timeout <= interval:
        raise ValueError(
            f"read_timeout ({read_timeout} s) must be longer than ws_ping_interval ({interval} s)"
        )
    settings: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio",
        "http": guarded(read_timeout),
        "ws": _quiet_pongs(),
        "ws_max_size": app.config.max_message_size,
        "ws_per_message_deflate": fast_ws,  # wsproto inflates without a limit
        "ws_ping_interval": interval,
        "ws_ping_timeout": read_timeout - (interval or 0),
        "lifespan": "on",
        "log_config": None,  # partydeco's logging, or the program's own
        "proxy_headers": False,
        "server_header": False,
        "timeout_graceful_shutdown": app.config.shutdown_timeout,
    }
    settings.update(options)
    try:
        return uvicorn.Config(app, **settings)
    except TypeError as error:
        raise TypeError(f"unknown Uvicorn option: {error}") from None


class HideQuery(logging.Filter):
    """Cut the query string off the paths in Uvicorn's access log lines.

    Uvicorn logs ``"GET /path?query HTTP/1.1"`` for every URL; party URLs already
    reach it without their query, and this filter does the same for every other route.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and "?" in a for a in args):
            record.args = tuple(
                a.partition("?")[0] if isinstance(a, str) and a.startswith("/") else a for a in args
            )
        return True


_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
    b"content-length: 32\r\nconnection: close\r\n\r\nRequest header fields too large\n"
)


def _guard(base: type[Any], timeout: float) -> type[asyncio.Protocol]:
    """*base*, an Uvicorn HTTP protocol, with a deadline and a size limit on each
    request's line and headers.

    The clock starts when the connection opens and again after each response; it
    stops when the request's headers are complete (Uvicorn starts a new
    request-response cycle) or the connection turns into a WebSocket. No timer per
    connection: one sweep per server, every :func:`sweep_interval` seconds, closes the
    connections whose wait has passed *timeout*.
    """
    every = sweep_interval(timeout)

    class Guarded(base):  # type: ignore[misc]
        #: loop time the wait for a request's headers began; None while none is awaited
        _header_since: float | None = None
        _header_bytes = 0
        _header_cycle: Any = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._start_headers()
            state = self.server_state
            if getattr(state, "partydeco_sweep", None) is None:
                state.partydeco_sweep = self.loop.call_later(every, _sweep, self.loop, state)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._header_since is None:
                return
            cycle = self.cycle
            if cycle is not self._header_cycle or self.transport.is_closing():
                self._header_since = None  # the headers are complete, or the request failed
                return
            if cycle is not None and cycle.more_body:
                return  # the rest of a body the app answered before reading it all
            self._header_bytes += len(data)
            if self._header_bytes > HEADER_LIMIT:
                self._header_since = None
                self.transport.write(_TOO_LARGE)
                self.transport.close()

        def handle_websocket_upgrade(self, *args: Any) -> None:
            self._header_since = None
            super().handle_websocket_upgrade(*args)
            # The WebSocket protocol took the connection over, and Uvicorn never calls
            # this one's connection_lost, which breaks the cycle through the parser's
            # callbacks: without this, every connect leaves its HTTP protocol (parser,
            # flow control, scope, transport) for the cyclic GC.
            self.parser = None

        if hasattr(base, "on_headers_complete"):  # httptools: the cycle starts here

            def on_headers_complete(self) -> None:
                previous = self.cycle
                super().on_headers_complete()
                cycle = self.cycle
                if cycle is not previous and cycle is not None:
                    cycle.transport = HeldHead(cycle, self.transport, self.loop)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():  # keep-alive: the next request's turn
                self._start_headers()

        def _start_headers(self) -> None:
            self._header_since = self.loop.time()
            self._header_bytes = 0
            self._header_cycle = self.cycle

        def close_if_overdue(self, now: float) -> None:
            """Close the connection if it has waited *timeout* seconds for headers by *now*."""
            since = self._header_since
            if since is None:
                return
            if self.cycle is not self._header_cycle:
                self._header_since = None  # a request began
            elif now - since >= timeout:
                self._header_since = None
                self.transport.close()

    def _sweep(loop: asyncio.AbstractEventLoop, state: Any) -> None:
        now = loop.time()
        for connection in list(state.connections):
            if isinstance(connection, Guarded):
                connection.close_if_overdue(now)
        # again while the server has connections, else at the next connection
        again = bool(state.connections)
        state.partydeco_sweep = loop.call_later(every, _sweep, loop, state) if again else None

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


def sweep_interval(timeout: float) -> float:
    """Seconds between two checks of the header deadline: a connection is closed
    between *timeout* and *timeout* plus this."""
    return min(timeout / 4, 5.0)


def guarded(timeout: float) -> type[asyncio.Protocol]:
    """Uvicorn's HTTP protocol (httptools, else h11) with a *timeout* in seconds and a
    :data:`HEADER_LIMIT` on each request's line and headers."""
    if importlib.util.find_spec("httptools") is None:
        return _guard(H11Protocol, timeout)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    return _guard(HttpToolsProtocol, timeout)


def _quiet_pongs() -> type[asyncio.Protocol] | str:
    """Uvicorn's sans-I/O ``websockets`` protocol, answering pings only while its peer
    reads what it is sent, else ``"wsproto"``.

    Uvicorn answers every ping at once, whether or not the peer reads: a client that
    sends pings and never reads would grow the server's write buffer without limit
    (80 MB in 8 s from one client). Once that buffer is over the transport's high-water
    mark, this protocol answers no more pings until it drains (RFC 6455 lets an endpoint
    answer only the latest of several pings).
    """
    if importlib.util.find_spec("websockets") is None:
        return "wsproto"
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    class QuietPongs(WebSocketsSansIOProtocol):
        _peer_reading = True

        def pause_writing(self) -> None:
            self._peer_reading = False
            super().pause_writing()

        def resume_writing(self) -> None:
            self._peer_reading = True
            super().resume_writing()

        def handle_ping(self) -> None:
            if self._peer_reading:
                super().handle_ping()
            else:
                self.conn.data_to_send()  # the pongs, dropped

    return QuietPongs


class UvicornServer(uvicorn.Server):
    """Uvicorn's server, closing partydeco's sockets with 1001 before its own shutdown.

    Signals end it gracefully once; a second SIGINT or SIGTERM exits at once. Unlike
    ``uvicorn.Server``, it does not raise the signal again once it has stopped, so
    ``party.run()`` returns normally.
    """

    def __init__(self, config: uvicorn.Config, app: App) -> None:
        super().__init__(config)
        self.party_app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Close every socket with 1001 and run their ``on_close``, then stop Uvicorn."""
        for server in getattr(self, "servers", []):
            server.close()  # no new connections while the sockets close
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self.party_app.shutdown()
        # Uvicorn then waits for what is left of shutdown_timeout, not for a timeout of its own.
        spent = loop.time() - started
        limit = self.party_app.config.shutdown_timeout
        self.config.timeout_graceful_shutdown = max(0.05, limit - spent)  # type: ignore[assignment]
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Handle SIGINT and SIGTERM while serving, and put the old handlers back."""
        handled = (signal.SIGINT, signal.SIGTERM)
        try:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        except ValueError:  # not the main thread: the caller handles signals
            yield
            return
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: Any) -> None:
        """The first signal stops the server gracefully, a second one at once."""
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to *host*:*port*, before anything starts (workers share it).

    Raises:
        OSError: the address cannot be bound (``party.run()`` makes a busy port one line).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(app: App, config: uvicorn.Config, sock: socket.socket) -> None:
    """Serve *app* on *sock* in this process until SIGINT or SIGTERM, warning first
    about slow fallbacks."""

    async def main() -> None:
        for warning in fallbacks():
            logger.warning("%s", warning)
        access = logging.getLogger("uvicorn.access")
        if not any(isinstance(f, HideQuery) for f in access.filters):
            access.addFilter(HideQuery())
        app.freeze()  # a setup error stops start-up here, before serving
        entry = app.quart.asgi_app  # as the app has it now: one call fewer than App.__call__
        if config.app is app:
            config.app = entry
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        logging.getLogger("partydeco.server").info(
            "Running on http://%s:%d with Uvicorn (CTRL + C to quit)", shown, port
        )
        await UvicornServer(config, app).serve(sockets=[sock])

    if config.loop == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
