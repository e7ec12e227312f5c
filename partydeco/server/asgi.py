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
from ..routing import match
from .http import serve_http
from .hypercorn import apply as apply_hypercorn_fixes
from .hypercorn import serving_with_hypercorn
from .runtime import Runtime
from .websocket import serve_websocket

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

    def __repr__(self) -> str:
        return f"<ASGIEntry {self.app!r} {self.runtime!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            raw = scope.get("raw_path")
            route = match(raw.decode("latin-1") if raw else scope["path"])
            if route is not None:
                runtime = self.runtime or self._build()
                # handlers run in Quart's app context: current_app, g, jsonify, extensions
                async with self.app.quart.app_context():
                    if kind == "http":
                        await serve_http(runtime, route, scope, receive, send)
                    else:
                        await serve_websocket(runtime, route, scope, receive, send)
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
        if serving_with_hypercorn():
            apply_hypercorn_fixes(self.app.config.max_message_size)
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
            raise
        self._context = context

    async def stop(self) -> None:
        """Close every socket (1001), stop the runtime, then run ``after_serving`` hooks."""
        runtime = self.runtime
        try:
            if runtime is not None:
                await runtime.shutdown()
                if runtime.state == "running":
                    await runtime.stop()
            await self.app.quart.shutdown()
        finally:
            context, self._context = self._context, None
            if context is not None:
                await context.pop(None)


def _require_asyncio() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise SetupError(
            "partydeco runs on asyncio; Hypercorn's trio worker is not supported: "
            "serve with the asyncio or uvloop worker (hypercorn -k asyncio / -k uvloop)"
        ) from None
