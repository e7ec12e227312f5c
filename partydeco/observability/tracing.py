"""OpenTelemetry spans: one per handshake, per HTTP request and per handler run.

The trace context a client sends with the upgrade or HTTP request
(``traceparent``/``tracestate``, read by the globally configured propagator)
becomes the parent: the handshake's span, and the span of every handler run for
that socket afterwards (``on_message`` included), belong to the client's trace.
Only the OpenTelemetry API is needed (the ``otel`` extra); spans are recorded by
whatever SDK the program configured, and are no-ops without one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..extras import missing

if TYPE_CHECKING:
    from ..routing import Route
    from ..types import Scope

__all__ = ["Tracer"]


class Tracer:
    """partydeco's spans (see the module).

    Raises:
        MissingExtraError: the OpenTelemetry API is not installed (a SetupError).
    """

    def __init__(self) -> None:
        try:
            from opentelemetry import context, propagate, trace
        except ModuleNotFoundError as error:
            raise missing(error, "tracing (tracing=True or PARTYDECO_TRACING=1)") from None
        self._context = context
        self._propagate = propagate
        self._trace = trace
        self._tracer = trace.get_tracer("partydeco")

    def __repr__(self) -> str:
        return "<Tracer partydeco>"

    def attach(self, scope: Scope) -> Any:
        """Make the client's trace context (from *scope*'s headers) current in this task;
        returns the token :meth:`detach` takes."""
        carrier = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", ())
        }
        return self._context.attach(self._propagate.extract(carrier))

    def detach(self, token: Any) -> None:
        """Restore the context from before :meth:`attach`."""
        self._context.detach(token)

    def start(self, name: str, route: Route) -> tuple[Any, Any]:
        """Start a server span *name* for a room and make it current; returns what
        :meth:`finish` takes."""
        attributes = {"partydeco.party": route.party, "partydeco.room": route.room}
        span = self._tracer.start_span(
            name, kind=self._trace.SpanKind.SERVER, attributes=attributes
        )
        token = self._context.attach(self._trace.set_span_in_context(span))
        return span, token

    def finish(self, started: tuple[Any, Any], status: int) -> None:
        """End a span from :meth:`start` with the HTTP *status* it answered (101: accepted)."""
        span, token = started
        self._context.detach(token)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(self._trace.StatusCode.ERROR)
        span.end()

    @contextlib.contextmanager
    def handler(self, kind: str, party: str, room: str | None) -> Iterator[Any]:
        """The span of one handler run."""
        attributes = {"partydeco.party": party, "partydeco.handler": kind}
        if room is not None:
            attributes["partydeco.room"] = room
        with self._tracer.start_as_current_span(
            f"partydeco {kind}", attributes=attributes
        ) as span:
            yield span
