"""The ASGI entry of an app: the lifespan and party URLs here, every other URL to Quart.

A party URL (``/parties/<party>/<room>``, ``/party/<room>``) goes straight to
:mod:`~partydeco.server.http` or :mod:`~partydeco.server.websocket`, skipping
Quart's per-request machinery; then partydeco's own URLs when they are on
(metrics, probes, the admin API: :mod:`partydeco.observability`); then static
assets; every other request is
Quart's, so the app's Quart routes, blueprints and extensions work as usual. The
entry is installed as the Quart app's ``asgi_app`` (the hook Quart documents for
ASGI middleware), so Quart's test client reaches party URLs too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..diagnostics import warn_missing_env
from ..errors import SetupError
from ..observability.settings import Settings
from ..response import Response
from ..routing import match
from .appcontext import current_context, in_app_context, quiet_context
from .http import hide_query, send_response, serve_http
from .hypercorn import apply as apply_hypercorn_fixes
from .hypercorn import on_shutdown
from .runtime import Runtime
from .shutdown import chain_signals, force_exit_on_second_signal, quiet_cancelled_connections
from .websocket import deny, serve_websocket

if TYPE_CHECKING:
    from quart.ctx import AppContext

    from ..app import App
    from ..types import Receive, Scope, Send

__all__ = ["ASGIEntry"]

logger = logging.getLogger("partydeco")


class ASGIEntry:
    """The ASGI application serving an :class:`~partydeco.App` (see the module).

    Attributes:
        app: the app served.
        runtime: what serving takes, built at start-up (see :class:`Runtime`);
            ``None`` until then.
    """

    def __init__(self, app: App, quart_asgi: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.runtime: Runtime | None = None
        self._quart_asgi = quart_asgi
        self._context: AppContext | None = None
        self._unhook: Callable[[], None] | None = None
        #: the package of the server that runs the lifespan (``"hypercorn"``,
        #: ``"uvicorn"``, ...), once it started it.
        self.server: str | None = None
        self._stopping: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<ASGIEntry {self.app!r} {self.runtime!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            raw = scope.get("raw_path")
            route = match(raw.decode("latin-1") if raw else scope["path"])
            if route is not None:
                runtime = self.runtime or self._build()
                if len(route.room) > runtime.config.max_room_id_length:
                    await _too_long(scope, send, runtime.config.max_room_id_length)
                    return
                # handlers run in Quart's app context: current_app, g, jsonify, extensions
                serve = serve_http if kind == "http" else serve_websocket
                quart = self.app.quart
                context = quiet_context(quart)
                if context is None or current_context is None:
                    await in_app_context(quart, serve, runtime, route, scope, receive, send)
                    return
                token = current_context.set(context)
                try:
                    await serve(runtime, route, scope, receive, send)
                finally:
                    current_context.reset(token)
                return
            if kind == "http":  # partydeco's own URLs: metrics, probes, the admin API
                own = self.runtime
                if own is None and Settings.resolve(self.app.config).serves_urls:
                    own = self._build()
                if own is not None and await own.ops.serve(own, scope, receive, send):
                    return
            if kind == "http" and self.app.static_files:
                # PartyKit's order: party URLs, then static assets, then the rest.
                runtime = self.runtime or self._build()
                for assets in runtime.static_files:
                    if await assets.serve(scope, send):
                        return
        elif kind == "lifespan":
            await self._lifespan(receive, send)
            return
        await self._quart_asgi(scope, receive, send)

    def _build(self) -> Runtime:
        # Without a lifespan (Quart's test client) the first request builds the runtime;
        # nothing is started then: no alarms, no idle unloading, no cluster.
        self.runtime = Runtime(self.app)
        return self.runtime

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        self.server = server_name(receive)
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    logger.exception("partydeco could not start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.stop()
                except Exception as exc:
                    logger.exception("partydeco did not stop cleanly")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        """Build and start the runtime, then run the Quart app's ``before_serving`` hooks.

        Variables that handlers declared with :func:`~partydeco.requires_env` and
        that are not set are logged as warnings first.

        Raises:
            SetupError: a handler or an option is wrong, or the event loop is not asyncio.
        """
        _require_asyncio()
        runtime = self.runtime
        if runtime is None or runtime.state != "built":  # a runtime serves one start
            runtime = self.runtime = Runtime(self.app)
        if self.server == "hypercorn":
            apply_hypercorn_fixes(self.app.config)
            self._unhook = on_shutdown(self._server_stopping)
        elif self.server is not None:  # Uvicorn and others: hear the signal first
            self._unhook = chain_signals(self._server_stopping)
        quiet_cancelled_connections(asyncio.get_running_loop())
        # The tasks the runtime starts (alarms, idle unloading, the Redis backplane) run
        # handlers too: they inherit this app context, which stays pushed while serving.
        context = self.app.quart.app_context()
        await context.push()
        try:
            warn_missing_env(self.app.handlers, runtime.env)
            await runtime.start()
            await self.app.quart.startup()
        except BaseException:
            await context.pop(None)
            if self._unhook is not None:
                self._unhook()
                self._unhook = None
            raise
        self._context = context

    def _server_stopping(self) -> None:
        """The server began to stop: close the sockets with 1001 now, not at lifespan
        shutdown, which comes after the server has waited for the connections."""
        runtime = self.runtime
        if runtime is None or self._stopping is not None:
            return
        if self.server == "hypercorn":  # chain_signals handles a second signal itself
            # (and a loop signal handler added now could still see the first one)
            force_exit_on_second_signal(if_server=True)
        self._stopping = asyncio.get_running_loop().create_task(runtime.shutdown())

    async def stop(self) -> None:
        """Close every socket (1001), stop the runtime, then run ``after_serving`` hooks."""
        if self._unhook is not None:
            self._unhook()
            self._unhook = None
        runtime = self.runtime
        try:
            if runtime is not None:
                await runtime.shutdown()
                if runtime.state == "running":
                    await runtime.stop()
            self._stopping = None
            await self.app.quart.shutdown()
        finally:
            context, self._context = self._context, None
            if context is not None:
                await context.pop(None)


def server_name(receive: Receive) -> str:
    """The top-level package of the server behind an ASGI *receive* callable (the
    object it is a method of, else the function itself): ``"hypercorn"``,
    ``"uvicorn"``, ... Importing a server proves nothing (Quart imports Hypercorn);
    being called by it does."""
    owner = getattr(receive, "__self__", receive)
    module = getattr(type(owner), "__module__", "") if owner is not receive else ""
    module = module or getattr(receive, "__module__", "") or ""
    return module.partition(".")[0]


async def _too_long(scope: Scope, send: Send, limit: int) -> None:
    hide_query(scope)
    response = Response(f"Room id is longer than {limit} characters", 414)
    if scope["type"] == "websocket":
        await deny(scope, send, response)
    else:
        await send_response(send, response)


def _require_asyncio() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise SetupError(
            "partydeco runs on asyncio; Hypercorn's trio worker is not supported: "
            "serve with the asyncio or uvloop worker (hypercorn -k asyncio / -k uvloop)"
        ) from None
