"""The seams between the server, the rooms, and where the rooms live.

- A :class:`Backplane` holds rooms: the server and the room lifecycle reach every
  room through it, by party and id, and never keep rooms themselves. One process
  (:class:`~partydeco.backplane.local.LocalBackplane`) or a Redis cluster
  (:class:`~partydeco.backplane.redis.RedisBackplane`) is a change of backplane,
  not of the room API.
- A :class:`RoomHandle` is what the backplane gives the server for one room: the
  calls that deliver a connect, a frame, a close, an HTTP request or an alarm.
  A :class:`~partydeco.Room` is one; a room in a cluster is another, which runs
  the room here or relays to the process that owns it.
- A :class:`Sink` is where a connection's frames go: its socket's
  :class:`~partydeco.outbox.Outbox`, or, for a socket another process holds, a
  relay to that process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..connection import Connection
    from ..request import Request
    from ..response import Response
    from ..room import Room

__all__ = ["Backplane", "RoomHandle", "Sink"]


class Sink(Protocol):
    """Where one connection's frames go. ``put`` and ``close`` never wait."""

    @property
    def accepted(self) -> bool:
        """Whether the handshake completed."""
        ...

    @property
    def closing(self) -> bool:
        """Whether a close was requested: nothing more is sent."""
        ...

    @property
    def close_frame(self) -> tuple[int, str] | None:
        """The code and reason this side closed with, if it did."""
        ...

    async def accept(
        self, headers: Iterable[tuple[str, str]] = (), subprotocol: str | None = None
    ) -> None:
        """Complete the handshake."""
        ...

    def put(self, frame: str | bytes, event: dict[str, Any] | None = None) -> None:
        """Send one frame (text for ``str``, binary for ``bytes``); *event* is the
        prebuilt ASGI ``websocket.send`` message of a broadcast, if any."""
        ...

    def close(self, code: int = 1000, reason: str = "", *, discard: bool = False) -> None:
        """Close after the frames already put (at once with *discard*)."""
        ...

    async def close_now(self, code: int, reason: str) -> None:
        """Close at once, dropping what is queued (server shutdown)."""
        ...

    def finish(self) -> None:
        """The socket is gone: stop sending."""
        ...


class RoomHandle(Protocol):
    """One room as the server reaches it (see the module)."""

    @property
    def id(self) -> str:
        """The room id."""
        ...

    @property
    def party(self) -> str:
        """The party's name."""
        ...

    @property
    def idle(self) -> bool:
        """Whether no connection is attached and nothing is in progress."""
        ...

    @property
    def last_active(self) -> float:
        """``time.monotonic()`` when the last arrival ended."""
        ...

    async def connect(self, request: Request, sink: Sink) -> Connection:
        """Start the room if needed, accept the socket and run ``on_connect``."""
        ...

    async def message(self, conn: Connection, data: str | bytes) -> None:
        """Deliver one frame from *conn*."""
        ...

    async def disconnect(self, conn: Connection, code: int, reason: str) -> None:
        """The socket of *conn* closed: run ``on_close``."""
        ...

    async def request(self, request: Request) -> Response:
        """Answer an HTTP request."""
        ...

    async def alarm(self) -> None:
        """Run the room's alarm handlers; raising asks the scheduler for a retry."""
        ...


class Backplane(Protocol):
    """Where rooms live (see the module)."""

    def room(self, party: str, room_id: str) -> RoomHandle:
        """The room *room_id* of *party*, created on first use."""
        ...

    def rooms(self) -> Iterator[RoomHandle]:
        """The rooms this process holds."""
        ...

    def release(self, room: RoomHandle) -> None:
        """Let go of a room that has become idle."""
        ...

    def local_rooms(self) -> Iterator[Room]:
        """The rooms whose handlers run in this process (each room runs in one)."""
        ...

    @property
    def available(self) -> bool:
        """Whether rooms can be served now (``False`` while Redis is unreachable)."""
        ...

    async def start(self) -> None:
        """Connect to whatever the backplane needs; the server calls this at start-up."""
        ...

    async def stop(self) -> None:
        """Hand rooms over and disconnect; the server calls this after closing sockets."""
        ...
