"""One WebSocket to a party URL, from the handshake to ``on_close``.

In order: admission before any hook (the handshake rate and open sockets of the
client's address, the ``Origin``, the room's capacity; no new socket once the
server is stopping); the party's ``before_connect`` hooks, whose ``Response`` is
the handshake's answer; the room (``on_start`` once, accept, ``on_connect``); then
the client's frames, each checked against the size limit (in bytes), the message
rate, the byte rate and a token refresh before it reaches ``on_message``; finally
``on_close``, however the socket ended.

On Hypercorn, frames are also checked below the app, as they arrive (see
:mod:`~partydeco.server.hypercorn_inbound`): the socket's message rate is shared
with that layer, where pings and pongs count against it.

Frames to the client never pass through here: handlers write to the
connection's :class:`~partydeco.outbox.Outbox`, straight to the ASGI ``send``.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING

from ..closecodes import ABNORMAL, GOING_AWAY, MESSAGE_TOO_BIG, NO_STATUS, POLICY_VIOLATION
from ..dispatch import run_hooks
from ..errors import BackplaneUnavailableError, ConnectionIdConflictError
from ..outbox import Outbox
from ..request import Request
from ..response import Response
from ..room import Lobby
from ..security import expiry
from ..security.limits import MessageRate
from .http import hide_query, not_found, send_response

if TYPE_CHECKING:
    from ..backplane.base import RoomHandle
    from ..config import Config
    from ..connection import Connection
    from ..observability.watch import Refusal, SocketWatch
    from ..routing import Route
    from ..security.limits import Admission
    from ..types import Receive, Refresher, Scope, Send
    from .hypercorn_inbound import StreamLimits
    from .runtime import Runtime

__all__ = ["deny", "serve_websocket"]

logger = logging.getLogger("partydeco")


async def serve_websocket(
    runtime: Runtime, route: Route, scope: Scope, receive: Receive, send: Send
) -> None:
    """Serve one WebSocket (see the module)."""
    config = runtime.config_for(route.party)
    watch = runtime.ops.watch_socket(route, scope)  # None unless metrics, traces or JSON logs
    admission = runtime.guard.admit(scope, route.party, route.room, config)
    request = Request.from_scope(scope, drop_header=runtime.principal_header)
    hide_query(scope)
    if runtime.stopping and not isinstance(admission, Response):
        admission.release()
        admission = Response("Server is shutting down", 503)
    if isinstance(admission, Response):
        if watch is not None:
            watch.refused("limit", admission.status)
            watch.end()
        await deny(scope, send, admission)
        return
    try:
        socket = _Socket(runtime, config, admission, send, watch)
        if watch is None:
            refusal = await socket.open(route, scope, request)
        else:
            refusal = await watch.handshake(
                partial(socket.open, route, scope, request), socket.connection
            )
        if refusal is None:
            await socket.serve(receive, scope)
        else:
            socket.outbox.finish()
            await deny(scope, send, refusal[1])
    finally:
        admission.release()
        if watch is not None:
            watch.end()


async def deny(scope: Scope, send: Send, response: Response) -> None:
    """Refuse a WebSocket handshake with *response* (a 403 where the server cannot)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send_response(send, response, websocket=True)
    else:
        await send({"type": "websocket.close", "code": POLICY_VIOLATION})


class _Socket:
    """One socket's serving state: its room, connection and outbox, and its limits."""

    __slots__ = (
        "admission",
        "config",
        "conn",
        "outbox",
        "reader",
        "refresher",
        "room",
        "runtime",
        "send",
        "timed_out",
        "watch",
    )

    def __init__(
        self,
        runtime: Runtime,
        config: Config,
        admission: Admission,
        send: Send,
        watch: SocketWatch | None,
    ) -> None:
        self.runtime = runtime
        self.watch = watch
        self.config = config
        self.admission = admission
        self.send = send
        # The reader is cancelled if the peer does not finish a close we started in time.
        self.reader = asyncio.current_task()
        self.timed_out = False
        self.outbox = Outbox(  # by position: keywords to a class cost a dict per call
            send,
            config.max_pending_messages,
            config.max_pending_bytes,
            config.close_timeout,
            self._close_timed_out,
            watch.meter if watch is not None else None,
            runtime.outbox_budget,
        )
        self.room: RoomHandle | None = None
        self.conn: Connection | None = None
        self.refresher: Refresher | None = None

    def _close_timed_out(self) -> None:
        self.timed_out = True
        if self.reader is not None:
            self.reader.cancel()

    def connection(self) -> Connection | None:
        """The socket's connection, once it joined the room."""
        return self.conn

    async def open(self, route: Route, scope: Scope, request: Request) -> Refusal | None:
        """Run the hooks, then join the room; the refusal to answer, if any.

        The ``websocket.connect`` message is not awaited first: Quart's test client
        never sends one. :meth:`serve` skips it.
        """
        runtime = self.runtime
        dispatch = runtime.dispatch.get(route.party)
        if dispatch is None:
            return "not_found", not_found(route.party)
        lobby = Lobby(route.room, route.party, runtime.env)
        forwarded = await run_hooks(
            dispatch.before_connect, request, lobby, self.config.principal_header
        )
        if isinstance(forwarded, Response):
            return "hook", forwarded
        room = self.room = runtime.backplane.room(route.party, route.room)
        outbox = self.outbox
        try:
            self.conn = await room.connect(forwarded, outbox)
        except ConnectionIdConflictError as exc:
            return "conflict", Response(str(exc).capitalize(), 409)
        except BackplaneUnavailableError as exc:
            if outbox.accepted:
                raise
            return "unavailable", Response(str(exc), 503)
        except Exception:
            logger.exception("could not start %r", room)
            if outbox.accepted:
                raise
            return "error", Response("Internal Server Error", 500)
        runtime.sockets[outbox] = None  # no one waits for its end until a shutdown
        if forwarded.expires_at is not None:
            expiry.arm(outbox, self.admission, forwarded.expires_at, self.config.token_leeway)
        if self.config.token_refresh:
            self.refresher = forwarded.token_refresher
        return None

    async def serve(self, receive: Receive, scope: Scope) -> None:
        """Hand the client's frames to the room until the socket closes; then ``on_close``.

        The socket may stay open for hours: nothing here keeps its upgrade request.
        """
        assert self.room is not None and self.conn is not None
        room, conn, outbox, config = self.room, self.conn, self.outbox, self.config
        limit = config.max_message_size
        per_second = config.max_messages_per_second
        rate = MessageRate(per_second, config.message_burst) if per_second is not None else None
        bytes_per_second = config.max_bytes_per_second
        byte_rate = (
            MessageRate(bytes_per_second, config.byte_burst or limit)
            if bytes_per_second is not None
            else None
        )
        stream: StreamLimits | None = scope.get("extensions", {}).get("partydeco.limits")
        if stream is not None:  # Hypercorn: limits below the app; pings take from the rate
            stream.configure(
                rate=rate,
                max_size=limit,
                message_timeout=config.message_timeout,
                close_timeout=config.close_timeout,
                budget=self.runtime.unfinished,
            )
        drop = config.message_rate_action == "drop"
        refresher = self.refresher
        meter = self.watch.meter if self.watch is not None else None
        code, reason = ABNORMAL, ""
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    data = message.get("text")
                    if data is None:
                        data = message.get("bytes") or b""
                        size = len(data)
                    else:
                        size = len(data) if data.isascii() else len(data.encode())
                    if meter is not None:
                        meter.received += 1
                        meter.received_bytes += size
                    if size > limit:
                        outbox.close(MESSAGE_TOO_BIG, "message too big", discard=True)
                        continue
                    if rate is not None and not rate.allow():
                        if not drop:
                            outbox.close(POLICY_VIOLATION, "message rate exceeded")
                        continue
                    if byte_rate is not None and not byte_rate.allow(size):
                        if not drop:
                            outbox.close(POLICY_VIOLATION, "byte rate exceeded")
                        continue
                    if (
                        refresher is not None
                        and expiry.maybe_refresh(data)
                        and await expiry.refresh(
                            data, refresher, outbox, self.admission, config.token_leeway
                        )
                    ):
                        continue
                    if not outbox.closing:
                        await room.message(conn, data)
                elif kind == "websocket.disconnect":
                    code = message.get("code", NO_STATUS)
                    reason = message.get("reason") or ""
                    break
        except asyncio.CancelledError:
            if not self.timed_out:
                # The server is stopping: say so to the client before we go.
                await outbox.close_now(GOING_AWAY, "server shutting down")
                await self._finish(GOING_AWAY, reason)
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        await self._finish(code, reason)

    async def _finish(self, code: int, reason: str) -> None:
        assert self.room is not None and self.conn is not None
        outbox = self.outbox
        outbox.finish()
        if outbox.close_frame is not None:  # we closed first: report our code, not the echo
            code, reason = outbox.close_frame
        if self.watch is not None:
            self.watch.closed(code, outbox.close_frame)
        try:
            await self.room.disconnect(self.conn, code, reason)
        finally:
            waiter = self.runtime.sockets.pop(outbox, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
