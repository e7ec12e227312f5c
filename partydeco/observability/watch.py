"""What observes one WebSocket or one HTTP request while the server serves it.

The server makes a watch only when metrics, tracing or JSON logs are on, and
calls it at a few points: a refusal, the handshake, the end. In between it adds
to :attr:`SocketWatch.meter`'s frame counters, if any; nothing else observes the
frames.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..closecodes import TRY_AGAIN_LATER
from . import logs

if TYPE_CHECKING:
    from contextvars import Token

    from ..connection import Connection
    from ..response import Response
    from ..routing import Route
    from ..types import Scope
    from .metrics import PartyMeter
    from .tracing import Tracer

__all__ = ["Refusal", "RequestWatch", "SocketWatch"]

#: Why a handshake was refused (a metrics label) and the answer sent.
Refusal = tuple[str, "Response"]


class _Watch:
    __slots__ = ("_log", "_parent", "_span", "_tracer", "meter", "route")

    def __init__(
        self,
        route: Route,
        scope: Scope,
        meter: PartyMeter | None,
        tracer: Tracer | None,
        bind_logs: bool,
    ) -> None:
        self.route = route
        #: the party's meter when metrics are on.
        self.meter = meter
        self._tracer = tracer
        self._parent = tracer.attach(scope) if tracer is not None else None
        self._span: Any = None
        self._log: Token[logs.LogContext | None] | None = (
            logs.bind(route.party, route.room) if bind_logs else None
        )

    def _start_span(self, name: str) -> None:
        if self._tracer is not None:
            self._span = self._tracer.start(name, self.route)

    def _end_span(self, status: int) -> None:
        if self._span is not None:
            assert self._tracer is not None
            self._tracer.finish(self._span, status)
            self._span = None

    def end(self) -> None:
        """The socket or request is over: restore the task's trace and log context."""
        if self._span is not None:
            self._end_span(500)
        if self._parent is not None:
            assert self._tracer is not None
            self._tracer.detach(self._parent)
            self._parent = None
        if self._log is not None:
            logs.unbind(self._log)
            self._log = None


class SocketWatch(_Watch):
    """Observes one WebSocket (see the module)."""

    __slots__ = ()

    def refused(self, outcome: str, status: int) -> None:
        """The handshake was refused before the hooks ran (a limit)."""
        if self.meter is not None:
            self.meter.handshake(outcome, status)

    async def handshake(
        self, open_socket: Callable[[], Awaitable[Refusal | None]],
        connection: Callable[[], Connection | None],
    ) -> Refusal | None:
        """Run *open_socket* (hooks, room, ``on_connect``) in the handshake's span and
        count its outcome; *connection* gives the connection once accepted."""
        self._start_span("partydeco handshake")
        try:
            refusal = await open_socket()
        except BaseException:
            self._end_span(500)
            raise
        meter = self.meter
        if refusal is not None:
            self._end_span(refusal[1].status)
            if meter is not None:
                meter.handshake(refusal[0], refusal[1].status)
            return refusal
        self._end_span(101)
        if meter is not None:
            meter.handshake("accepted", 101)
            meter.connections.inc()
        conn = connection()
        if self._log is not None and conn is not None:
            logs.update(conn.id, conn.principal)
        return None

    def closed(self, code: int, close_frame: tuple[int, str] | None) -> None:
        """An accepted socket ended with *code* (*close_frame*: our close, if we sent one)."""
        meter = self.meter
        if meter is not None:
            meter.connections.dec()
            meter.closed(code, close_frame is not None and close_frame[0] == TRY_AGAIN_LATER)


class RequestWatch(_Watch):
    """Observes one HTTP request to a party URL (see the module)."""

    __slots__ = ()

    def begin(self) -> None:
        """The request reaches the hooks: its span starts."""
        self._start_span("partydeco request")

    def identified(self, principal: str | None) -> None:
        """The hooks let the request through as *principal*."""
        if self._log is not None and principal is not None:
            logs.update(None, principal)

    def answered(self, status: int) -> None:
        """The request was answered with *status*."""
        self._end_span(status)
        if self.meter is not None:
            self.meter.http(status)
