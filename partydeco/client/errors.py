"""Errors raised by the Python partysocket client."""

from __future__ import annotations

from partydeco.client.backoff import CloseInfo
from partydeco.errors import ConnectionClosedError, HandshakeRefusedError, PartydecoError

__all__ = [
    "BufferFullError",
    "ClientError",
    "ClosedByServerError",
    "HandshakeRejectedError",
    "ReconnectStoppedError",
    "RetriesExhaustedError",
    "SocketClosedError",
    "stopped_error",
]


class ClientError(PartydecoError):
    """Base class of the client's errors."""


class SocketClosedError(ClientError, ConnectionClosedError):
    """The socket was closed with :meth:`PartySocket.close`; call ``reconnect()`` to reuse it."""

    def __init__(self, message: str, code: int = 1000, reason: str = "") -> None:
        ConnectionClosedError.__init__(self, code, reason, message)


class BufferFullError(ClientError):
    """``send()`` found the offline buffer full and the overflow policy is ``"error"``.

    Attributes:
        limit: the buffer's size in messages.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the offline buffer already holds {limit} messages; wait for the connection "
            "(await socket.wait_open()) or raise max_buffered"
        )
        self.limit = limit

    def __repr__(self) -> str:
        return f"BufferFullError(limit={self.limit})"


class ReconnectStoppedError(ClientError):
    """The socket gave up: it will not reconnect on its own (``reconnect()`` starts over).

    Attributes:
        info: the last failure, see :class:`CloseInfo`.
        attempts: how many connection attempts were made since the last successful open.
    """

    def __init__(self, message: str, info: CloseInfo, attempts: int) -> None:
        # not super(): subclasses mix in ConnectionClosedError or HandshakeRefusedError,
        # whose attributes they set themselves
        PartydecoError.__init__(self, message)
        self.info = info
        self.attempts = attempts

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.args[0]!r}, info={self.info!r})"


class HandshakeRejectedError(ReconnectStoppedError, HandshakeRefusedError):
    """The server answered the WebSocket handshake with an HTTP error it means for good.

    Attributes:
        status: the HTTP status, e.g. ``401``.
        body: the response body (bounded by the client's ``max_size``).
    """

    def __init__(self, info: CloseInfo, attempts: int) -> None:
        assert info.status is not None
        body = info.body.decode("utf-8", "replace")[:200]
        message = f"server refused the connection: HTTP {info.status} {body}"
        super().__init__(message.rstrip(), info, attempts)
        self.status = info.status
        self.headers = []
        self.body = info.body


class ClosedByServerError(ReconnectStoppedError, ConnectionClosedError):
    """The server closed an open connection with a code the reconnect rule treats as final.

    Attributes:
        code: the close code, e.g. ``1008`` or ``4001``.
        reason: the close reason the server gave.
    """

    def __init__(self, info: CloseInfo, attempts: int) -> None:
        assert info.code is not None
        message = f"server closed the connection: {info.code} {info.reason}"
        super().__init__(message.rstrip(), info, attempts)
        self.code = info.code
        self.reason = info.reason


class RetriesExhaustedError(ReconnectStoppedError):
    """``max_retries`` attempts failed in a row; ``info`` tells how the last one failed."""


def stopped_error(info: CloseInfo, failures: int) -> ReconnectStoppedError:
    """The error a socket gives up with after *info*, a failure it will not retry."""
    if info.status is not None:
        return HandshakeRejectedError(info, failures)
    if info.code is not None:
        return ClosedByServerError(info, failures)
    return ReconnectStoppedError(f"stopped reconnecting after {info.error!r}", info, failures)
