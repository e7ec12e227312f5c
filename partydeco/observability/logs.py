"""Structured logs: one JSON object per line, with the room and connection a line is about.

While a socket, an HTTP request or an alarm is served, a context variable holds
its party, room, connection id and principal (who the hooks authenticated), so
every log line written meanwhile, by partydeco or by a handler, carries them.
:class:`JSONFormatter` writes each record as one line::

    {"time": "2026-01-02T03:04:05.678Z", "level": "INFO", "logger": "app",
     "event": "joined", "party": "chat", "room": "lobby", "connection": "c1",
     "principal": "alice"}

Tokens never appear: query-string tokens, ``Bearer`` credentials and anything
shaped like a JWT are replaced by ``[redacted]`` in the event and the traceback.
With OpenTelemetry tracing on, ``trace_id`` and ``span_id`` name the current span.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "TEXT_FORMAT",
    "JSONFormatter",
    "LogContext",
    "bind",
    "configure",
    "current",
    "redact",
    "unbind",
    "update",
]


#: The text format of ``partydeco serve``'s lines: time, level, logger, message.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True, slots=True)
class LogContext:
    """What the lines logged while serving one socket, request or alarm are about."""

    party: str
    room: str
    connection: str | None = None
    principal: str | None = None


_context: contextvars.ContextVar[LogContext | None] = contextvars.ContextVar(
    "partydeco_log_context", default=None
)


def current() -> LogContext | None:
    """The log context of the code running now, if any."""
    return _context.get()


def bind(
    party: str, room: str, connection: str | None = None, principal: str | None = None
) -> contextvars.Token[LogContext | None]:
    """Make log lines from here on (in this task) carry these fields; returns the token
    that :func:`unbind` takes."""
    return _context.set(LogContext(party, room, connection, principal))


def update(connection: str | None = None, principal: str | None = None) -> None:
    """Add the connection id and principal to the current log context."""
    ctx = _context.get()
    if ctx is not None:
        _context.set(replace(ctx, connection=connection, principal=principal))


def unbind(token: contextvars.Token[LogContext | None]) -> None:
    """Restore the log context from before :func:`bind`."""
    _context.reset(token)


# ?token=..., access_token=..., Authorization: Bearer ..., and JWS compact tokens.
_SECRETS = re.compile(
    r"(?i)((?:access_|refresh_|id_)?token=)[^&\s\"']+"
    r"|(bearer\s+)[A-Za-z0-9._~+/=-]+"
    r"|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
)


def redact(text: str) -> str:
    """*text* with credentials replaced by ``[redacted]``."""
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2) or "") + "[redacted]", text)


class JSONFormatter(logging.Formatter):
    """Formats each record as one JSON object on one line (see the module).

    Use it in any logging configuration, e.g. Hypercorn's ``--log-config``::

        [formatter_json]
        class = partydeco.observability.JSONFormatter
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        created = time.gmtime(record.created)
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", created) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        ctx = _context.get()
        if ctx is not None:
            entry["party"] = ctx.party
            entry["room"] = ctx.room
            if ctx.connection is not None:
                entry["connection"] = ctx.connection
            if ctx.principal is not None:
                entry["principal"] = ctx.principal
        trace = _trace_ids()
        if trace is not None:
            entry["trace_id"], entry["span_id"] = trace
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = redact(record.exc_text)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _trace_ids() -> tuple[str, str] | None:
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


def configure(json_lines: bool, level: int = logging.INFO) -> None:
    """Set up the root logger for ``partydeco serve`` unless the program did already:
    JSON lines with *json_lines*, else :data:`TEXT_FORMAT`."""
    root = logging.getLogger()
    if root.handlers:
        if json_lines:  # e.g. basicConfig by the app: keep its handlers, write JSON
            for handler in root.handlers:
                handler.setFormatter(JSONFormatter())
        return
    handler = logging.StreamHandler()
    if json_lines:
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
