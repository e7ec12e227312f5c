"""The server glue: party URLs over raw ASGI, everything else through Quart.

Party URLs take a direct path: hooks, then the room, with frames written by
each connection's outbox straight to the ASGI ``send``. Quart's per-request
machinery (contexts, signals, a loop pass per frame sent) is skipped there;
everything else, the lifespan included, is an ordinary Quart app.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from quart import Quart

from . import routing
from .closecodes import ABNORMAL, GOING_AWAY, MESSAGE_TOO_BIG, NO_STATUS, POLICY_VIOLATION
from .dispatch import run_hooks
from .errors import BackplaneUnavailableError, BodyTooLargeError
from .outbox import Outbox
from .request import Request
from .response import Response
from .room import Lobby
from .security import expiry
from .security.limits import MessageRate, header
from .security.origins import cors_preflight_headers
from .types import Receive, Scope, Send

if TYPE_CHECKING:
    from .app import App
    from .config import Config
    from .dispatch import Dispatch
    from .routing import Route
    from .security.limits import Admission

__all__ = ["make_quart"]

logger = logging.getLogger("partydeco")




class PartyQuart(Quart):
    """A Quart app that hands party URLs to partydeco before routing."""

    partydeco: App

    async def asgi_app(self, scope: Any, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            raw = scope.get("raw_path")
            route = routing.match(raw.decode("latin-1") if raw else scope["path"])
            if route is not None:
                if kind == "http":
                    await handle_http(self.partydeco, route, scope, receive, send)
                else:
                    await handle_websocket(self.partydeco, route, scope, receive, send)
                return
            if kind == "http":
                # PartyKit's order: party URLs, then static assets, then the rest.
                for assets in self.partydeco.static_files:
                    if await assets.serve(scope, send):
                        return
        await super().asgi_app(scope, receive, send)


def make_quart(app: App) -> PartyQuart:
    """The Quart app that serves *app*."""
    quart = PartyQuart("partydeco")
    quart.partydeco = app

    @quart.before_serving
    async def _freeze() -> None:
        app.dispatch  # noqa: B018 - freezes the handlers; a setup error stops start-up
        await app.start_services()

    @quart.after_serving
    async def _close_sockets() -> None:
        await app.shutdown()
        await app.stop_services()

    return quart


def _party(app: App, name: str) -> Dispatch | None:
    return app.dispatch.get(name)


def _not_found(name: str) -> Response:
    return Response(f"Party {name} not found", 404)


async def handle_http(app: App, route: Route, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer an HTTP request to a party URL."""
    config = app.config_for(route.party)
    extra: list[tuple[str, str]] = []
    origin = header(scope, b"origin")
    if origin is not None:
        if not app.guard.origin_allowed(scope, config):
            await send_response(send, Response("Origin not allowed", 403))
            return
        if config.cors:
            if scope.get("method") == "OPTIONS" and header(
                scope, b"access-control-request-method"
            ):
                # a preflight carries no credentials: answer it before any hook
                allow = cors_preflight_headers(
                    origin, header(scope, b"access-control-request-headers"), config.cors_max_age
                )
                await send_response(send, Response(status=204), extra=allow)
                return
            extra = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
    app.guard.client(scope)  # behind a trusted proxy, remote_addr is the client's
    request = Request.from_scope(scope, receive, config.max_body_size)
    dispatch = _party(app, route.party)
    if dispatch is None:
        response = _not_found(route.party)
    else:
        try:
            forwarded = await run_hooks(
                dispatch.before_request, request, Lobby(route.room, route.party, app.env)
            )
            if isinstance(forwarded, Response):
                response = forwarded
            else:
                response = await app.backplane.room(route.party, route.room).request(forwarded)
        except BodyTooLargeError as exc:
            response = Response(str(exc), 413)
    await send_response(send, response, head=scope.get("method") == "HEAD", extra=extra)


async def send_response(
    send: Send,
    response: Response,
    *,
    head: bool = False,
    websocket: bool = False,
    extra: list[tuple[str, str]] | None = None,
) -> None:
    """Send *response* over ASGI, as an HTTP answer or a WebSocket denial.

    *extra* headers (CORS) replace any of the same name the response has.
    """
    prefix = "websocket.http.response" if websocket else "http.response"
    if extra:
        names = {name.lower() for name, _ in extra}
        pairs = [(k, v) for k, v in response.headers if k.lower() not in names] + extra
    else:
        pairs = list(response.headers)
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": prefix + ".start", "status": response.status, "headers": headers})
    await send({"type": prefix + ".body", "body": b"" if head else response.body})


async def _deny(scope: Scope, send: Send, response: Response) -> None:
    if "websocket.http.response" in scope.get("extensions", {}):
        await send_response(send, response, websocket=True)
    else:  # the server cannot send a response; it answers 403
        await send({"type": "websocket.close", "code": 1008})


async def handle_websocket(
    app: App, route: Route, scope: Scope, receive: Receive, send: Send
) -> None:
    """Serve one WebSocket to a party URL, from the handshake to ``on_close``.

    Admission comes first, before any hook: the handshake rate and open
    sockets of the client's address, the ``Origin``, the room's capacity.
    """
    config = app.config_for(route.party)
    admission = app.guard.admit(scope, route.party, route.room, config)
    if isinstance(admission, Response):
        await _deny(scope, send, admission)
        return
    try:
        await _serve_websocket(app, route, scope, receive, send, config, admission)
    finally:
        admission.release()


async def _serve_websocket(
    app: App,
    route: Route,
    scope: Scope,
    receive: Receive,
    send: Send,
    config: Config,
    admission: Admission,
) -> None:
    # The ``websocket.connect`` message is not awaited first: Quart's test
    # client never sends one. The reader loop below skips it.
    dispatch = _party(app, route.party)
    if dispatch is None:
        await _deny(scope, send, _not_found(route.party))
        return
    request = Request.from_scope(scope)
    forwarded = await run_hooks(
        dispatch.before_connect, request, Lobby(route.room, route.party, app.env)
    )
    if isinstance(forwarded, Response):
        await _deny(scope, send, forwarded)
        return

    reader = asyncio.current_task()
    timed_out = False

    def on_timeout() -> None:
        nonlocal timed_out
        timed_out = True
        if reader is not None:
            reader.cancel()

    outbox = Outbox(
        send,
        max_messages=config.max_pending_messages,
        max_bytes=config.max_pending_bytes,
        close_timeout=config.close_timeout,
        on_timeout=on_timeout,
    )
    room = app.backplane.room(route.party, route.room)
    try:
        conn = await room.connect(forwarded, outbox)
    except BackplaneUnavailableError as exc:
        if not outbox.accepted:
            await _deny(scope, send, Response(str(exc), 503))
            return
        raise
    except Exception:
        logger.exception("could not start %r", room)
        if not outbox.accepted:
            await _deny(scope, send, Response("Internal Server Error", 500))
            return
        raise
    finished = asyncio.Event()
    app.sockets[outbox] = finished
    code, reason = ABNORMAL, ""
    limit = config.max_message_size
    leeway = config.token_leeway
    if forwarded.expires_at is not None:
        expiry.arm(outbox, admission, forwarded.expires_at, leeway)
    refresher = forwarded.token_refresher if config.token_refresh else None
    # The socket may stay open for hours: keep no reference to its upgrade request.
    del request, forwarded
    per_second = config.max_messages_per_second
    rate = MessageRate(per_second, config.message_burst) if per_second is not None else None
    drop = config.message_rate_action == "drop"
    try:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                if len(data) > limit:
                    outbox.close(MESSAGE_TOO_BIG, "message too big", discard=True)
                    continue
                if rate is not None and not rate.allow():
                    if not drop:
                        outbox.close(POLICY_VIOLATION, "message rate exceeded")
                    continue
                if (
                    refresher is not None
                    and expiry.maybe_refresh(data)
                    and await expiry.refresh(data, refresher, outbox, admission, leeway)
                ):
                    continue
                if not outbox.closing:
                    await room.message(conn, data)
            elif kind == "websocket.disconnect":
                code = message.get("code", NO_STATUS)
                reason = message.get("reason") or ""
                break
    except asyncio.CancelledError:
        if not timed_out:
            # The server is stopping: say so to the client before we go.
            await outbox.close_now(GOING_AWAY, "server shutting down")
            code = GOING_AWAY
            await _finish(app, room, conn, outbox, finished, code, reason)
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
    await _finish(app, room, conn, outbox, finished, code, reason)


async def _finish(
    app: App,
    room: Any,
    conn: Any,
    outbox: Outbox,
    finished: asyncio.Event,
    code: int,
    reason: str,
) -> None:
    outbox.finish()
    if outbox.close_frame is not None:  # we closed first: report our code, not the echo
        code, reason = outbox.close_frame
    try:
        await room.disconnect(conn, code, reason)
    finally:
        app.sockets.pop(outbox, None)
        finished.set()
