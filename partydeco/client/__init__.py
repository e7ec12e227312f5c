"""A Python client for partydeco and PartyKit rooms, modelled on the JavaScript partysocket.

Example::

    from partydeco.client import PartySocket

    async with PartySocket("localhost:1999", "lobby", query={"token": token}) as socket:
        await socket.send("hello")
        async for message in socket:
            ...
"""

from __future__ import annotations

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
from partydeco.client.socket import HeadersSource, Message, PartySocket, QuerySource
from partydeco.roomurl import QueryValue, RoomAddress, is_local_host

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
