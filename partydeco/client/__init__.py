"""A Python client for partydeco and PartyKit rooms, modelled on the JavaScript partysocket.

Example::

    from partydeco.client import PartySocket

    async with PartySocket("localhost:1999", "lobby", query={"token": token}) as socket:
        await socket.send("hello")
        async for message in socket:
            ...

It needs the ``client`` extra (the websockets package): ``pip install 'partydeco[client]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from partydeco.client.backoff import (
    TERMINAL_STATUSES,
    Backoff,
    CloseInfo,
    default_should_reconnect,
)
from partydeco.client.errors import (
    BufferFullError,
    ClientError,
    ClosedByServerError,
    HandshakeRejectedError,
    ReconnectStoppedError,
    RetriesExhaustedError,
    SocketClosedError,
)
from partydeco.client.url import QueryValue, RoomAddress, is_local_host
from partydeco.extras import missing

if TYPE_CHECKING:
    from partydeco.client.socket import HeadersSource, Message, PartySocket, QuerySource

__all__ = [
    "TERMINAL_STATUSES",
    "Backoff",
    "BufferFullError",
    "ClientError",
    "CloseInfo",
    "ClosedByServerError",
    "HandshakeRejectedError",
    "HeadersSource",
    "Message",
    "PartySocket",
    "QuerySource",
    "QueryValue",
    "ReconnectStoppedError",
    "RetriesExhaustedError",
    "RoomAddress",
    "SocketClosedError",
    "default_should_reconnect",
    "is_local_host",
]

# The socket needs the ``websockets`` package (the ``client`` extra); the rest of the
# package (URLs, backoff, errors) does not, and the test client uses it.
_SOCKET_NAMES = frozenset({"HeadersSource", "Message", "PartySocket", "QuerySource"})


def __getattr__(name: str) -> Any:
    if name not in _SOCKET_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from partydeco.client import socket
    except ModuleNotFoundError as exc:
        raise missing(exc, f"partydeco.client.{name}") from None
    return getattr(socket, name)
